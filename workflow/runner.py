"""Run one delivery: claim it, validate its input, build the context, call the
handler, and record the outcome.

An attempt is all or nothing: the handler runs outside any transaction with its
state writes and emits held in its context; they are written in the transaction
that marks the delivery succeeded, or dropped if it fails. Its log lines are kept.
An ``async def`` handler is run to completion here, in this thread (see ``aio``).
"""

import json
import logging
import traceback

from django.db import close_old_connections
from rest_framework.exceptions import ValidationError

from . import deliveries, signals
from .aio import call_handler
from .context import Context
from .logs import StepLogger
from .models import Run
from .registry import registry
from .schemas import validate

logger = logging.getLogger("workflow")


class InvalidInput(Exception):
    """An event's data does not match the subscriber's ``input`` serializer."""


def handler_args(step, delivery):
    """The arguments before ``ctx``: the validated input, or nothing for a cron step."""
    if step.type == "cron":
        return ()
    data = delivery.event.data if delivery.event_id else {}
    schema = step.config.input
    if schema is None:
        return (data,)
    try:
        return (validate(schema, data),)
    except ValidationError as exc:
        detail = json.dumps(exc.detail)
        raise InvalidInput(f"{step.name} input did not match its input schema: {detail}") from None


def run_delivery(delivery_id, worker="", on_claim=None):
    """Run one attempt at ``delivery_id`` if it is due; returns the run status or None.

    ``on_claim(delivery, run)`` is called once the delivery is held, so the caller can
    hand it back if it must stop before the attempt ends.
    """
    close_old_connections()
    try:
        claimed = deliveries.claim(delivery_id, worker)
        if claimed is None:
            return None
        delivery, run = claimed
        if on_claim:
            on_claim(delivery, run)
        return run_claimed(delivery, run)
    finally:
        close_old_connections()


def complete_now(delivery, run, ctx):
    """Record an attempt's success in a transaction of its own."""
    deliveries.complete(delivery, run, ctx.commit)


def run_claimed(delivery, run, complete=complete_now):
    """Run one attempt at a delivery already claimed; returns the run status.

    ``complete(delivery, run, ctx)`` records its success (the worker's completer
    batches them); it raises ``ClaimLost`` if the claim was lost, or what the attempt's
    held writes raised.
    """
    signals.send(signals.run_started, sender=Run, run=run)
    status = _attempt(delivery, run, complete)
    run.status = status
    signals.send(signals.run_finished, sender=Run, run=run)
    return status


def _failed(outcome, log):
    """The run status for a failure ``deliveries.fail`` recorded (None: it held nothing)."""
    if outcome is None:
        log.warn("Attempt discarded", reason="the delivery was handed back or taken over")
        return Run.Status.INTERRUPTED
    return Run.Status.FAILED


def _attempt(delivery, run, complete):
    step = registry.get(delivery.step_name)
    log = StepLogger(delivery.step_name, delivery.trace_id, run=run)
    try:
        if step is None:
            raise LookupError(f"no step named {delivery.step_name!r} is registered")
        ctx = Context(step, delivery.trace_id, held=True, logger=log)
        call_handler(step.handler, handler_args(step, delivery), ctx)  # sync or async def
        complete(delivery, run, ctx)
        return Run.Status.SUCCEEDED
    except deliveries.ClaimLost as exc:
        log.warn("Attempt discarded", reason=str(exc))
        return Run.Status.INTERRUPTED
    except InvalidInput as exc:
        log.error("Invalid input", error=str(exc))
        return _failed(deliveries.fail(delivery, run, str(exc), retry=False), log)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        outcome = deliveries.fail(delivery, run, error, traceback.format_exc())
        if outcome:
            logger.warning(
                "%s failed (trace %s)", step.name if step else "?", delivery.trace_id, exc_info=True
            )
            log.error("Handler failed", error=error, attempt=delivery.attempts, next=outcome)
        return _failed(outcome, log)
    finally:
        log.flush()
