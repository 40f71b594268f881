"""One attempt at a claimed delivery: validate its input, build the context, call the
handler, and return the ``Outcome``. An attempt writes no delivery state: the store
records its outcome (``store.record``), and ``finish`` then reports it.

An attempt is all or nothing: the handler runs outside any transaction with its state
writes and emits held in its context; the outcome carries them, and the store applies
them in the transaction that records the success, or drops them. Its log lines are
kept either way. An ``async def`` handler is run to completion here, in this thread
(see ``aio``), and cancelled at its timeout.
"""

import json
import logging
import traceback

from rest_framework.exceptions import ValidationError

from . import joins, signals
from .aio import call_handler
from .context import Context
from .errors import HandlerTimeout, InvalidInput
from .logs import StepLogger
from .models import Run
from .policy import QueuePolicy, handler_timeout
from .registry import registry
from .schemas import validate
from .store import Outcome, store

__all__ = ["InvalidInput", "attempt", "finish", "handler_args", "run_delivery"]

logger = logging.getLogger("workflow")


def run_delivery(delivery_id, worker=""):
    """Claim, attempt and record ``delivery_id`` in this thread: a worker's path, in a
    batch of one (``FlowTester`` runs flows with it). The run's status, or None if the
    delivery could not be claimed (not due, finished, held elsewhere)."""
    claims = store.claim([delivery_id], worker)
    if not claims:
        return None
    (claim,) = claims
    outcome = attempt(claim, timeout=timeout_of(claim))
    (recorded,), _ = store.record([outcome])
    return finish(recorded)


def handler_args(step, delivery):
    """The arguments before ``ctx``: the validated input, or nothing for a cron step."""
    if step.type == "cron":
        return ()
    return (validated(step, delivery.event.data if delivery.event_id else {}),)


def validated(step, data):
    """``data`` as the step's ``input`` serializer gives it (``data`` itself without one)."""
    schema = step.config.input
    if schema is None:
        return data
    try:
        return validate(schema, data)
    except ValidationError as exc:
        detail = json.dumps(exc.detail)
        raise InvalidInput(f"{step.name} input did not match its input schema: {detail}") from None


def attempt(claim, timeout=None, log_writer=None):
    """Run the handler for ``claim``; its ``Outcome``. After ``timeout`` seconds an
    ``async def`` handler is cancelled and the attempt timed out (a sync one cannot be
    stopped: the worker abandons its thread, see ``executor``). Its log lines are
    stored by ``log_writer`` (a worker's ``LogWriter``), else by this thread."""
    delivery = claim.delivery
    signals.send(signals.run_started, sender=Run, run=claim.run)
    step = registry.get(delivery.step_name)
    log = StepLogger(delivery.step_name, delivery.trace_id, run=claim.run, writer=log_writer)
    try:
        if step is None:
            raise LookupError(f"no step named {delivery.step_name!r} is registered")
        ctx = Context(step, delivery.trace_id, held=True, logger=log, event=delivery.event)
        if getattr(step.config, "join", None):
            arrival = joins.arrive(step, delivery)
            if arrival.parts is None:  # waiting for more, or handed to on_timeout
                joins.report(step, arrival, ctx)
                return Outcome.success(claim, ctx.commit if ctx.holds_writes() else None)
            args = (validated(step, arrival.parts),)
        else:
            args = handler_args(step, delivery)
        call_handler(step.handler, args, ctx, timeout=timeout)
        return Outcome.success(claim, ctx.commit if ctx.holds_writes() else None)
    except HandlerTimeout as exc:
        return timed_out(claim, exc.seconds)
    except InvalidInput as exc:
        return Outcome.failure(claim, str(exc), final=True, label="Invalid input")
    except Exception as exc:
        final = not QueuePolicy.for_step(step).retries(exc)
        return Outcome.failure(
            claim, f"{type(exc).__name__}: {exc}", traceback.format_exc(), final=final
        )
    finally:
        log.flush()


def timed_out(claim, seconds):
    """The outcome of an attempt past its handler timeout: a failure, retried as any."""
    error = f"HandlerTimeout: {HandlerTimeout(seconds)}"
    return Outcome.failure(claim, error, label="Handler timed out")


def timeout_of(claim):
    """Seconds an attempt of ``claim`` may run (its step's handler timeout)."""
    return handler_timeout(registry.get(claim.step_name))


def discard(claim, reason):
    """An outcome that came too late to be recorded: the step's log says why."""
    delivery = claim.delivery
    StepLogger(delivery.step_name, delivery.trace_id, run=claim.run).warn(
        "Attempt discarded", reason=reason
    )


def finish(recorded):
    """Report a recorded outcome: the step's log line for a failure or a discarded
    attempt, the run's final status, and ``run_finished``."""
    outcome = recorded.outcome
    delivery, run = outcome.claim.delivery, outcome.claim.run
    log = StepLogger(delivery.step_name, delivery.trace_id, run=run)
    if recorded.discarded:
        run.status = Run.Status.INTERRUPTED
        log.warn("Attempt discarded", reason=recorded.reason)
    elif outcome.succeeded:
        run.status = Run.Status.SUCCEEDED
    else:
        run.status = Run.Status.FAILED
        _report_failure(log, outcome, delivery, recorded.status)
    signals.send(signals.run_finished, sender=Run, run=run)
    return run.status


def _report_failure(log, outcome, delivery, status):
    retried = status != "dead"
    log.error(outcome.label, error=outcome.error, attempt=delivery.attempts, next=status)
    reason = "retried" if retried else ("not retried" if outcome.final else "its last attempt")
    # The traceback is for errors worth retrying; a final one is told once, in one line.
    logger.warning(
        "%s failed (trace %s, %s): %s%s",
        delivery.step_name,
        delivery.trace_id,
        reason,
        outcome.error,
        f"\n{outcome.traceback}" if outcome.traceback and not outcome.final else "",
    )
