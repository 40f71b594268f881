"""The handler context: ``emit``, ``state``, ``logger``, ``trace_id``, ``flows``.

A background attempt's context holds its emits and state writes until ``commit()``,
which the store calls in the transaction that records the attempt's success (again in
the next one, should that transaction roll back); an API step's context writes
through, inside the request's transaction.

Each emit of a background attempt is one deeper in its trace than the event the
attempt handles; past ``WORKFLOW["MAX_DEPTH"]`` it fails (``EmitTooDeep``), naming the
steps that keep emitting to each other, so a cycle of steps stops there. A cycle whose
steps each emit several events would hold 2**64 events by then: an emit 2 or more deep
also fails (``TraceTooLarge``) when its trace would hold more than
``WORKFLOW["MAX_TRACE_EVENTS"]`` events (counted once per attempt, with the attempt's
own emits; shallower emits, the usual fan-out of an API call or a cron slot, are not
counted).

Annotate a handler's ``ctx`` as ``Context`` (``workflow.handlers`` has every handler type).
"""

from collections.abc import Mapping
from typing import Any, Required, TypedDict

from . import bus
from .conf import workflow_settings
from .contracts import check_emit
from .errors import EmitTooDeep, TraceTooLarge, UndeclaredEmit
from .jsonutil import json_copy
from .logs import StepLogger
from .models import Event, Run
from .registry import RegisteredStep
from .state import AttemptState, State, StateStore

__all__ = ["Context", "EmitMessage", "EmitTooDeep", "TraceTooLarge", "UndeclaredEmit"]
COUNTED_FROM = 2  # the depth from which emits count the events of their trace


class EmitMessage(TypedDict, total=False):
    """The one-argument form of ``ctx.emit``: ``{"topic": ..., "data": ...}``."""

    topic: Required[str]
    data: Any
    delay: float | None
    idempotency_key: str | int | None


class Context:
    """What a handler gets as ``ctx``: ``emit``, ``state``, ``logger``, ``trace_id``, ``flows``."""

    step: RegisteredStep
    trace_id: str
    """The trace this run belongs to (an API response carries it in ``X-Trace-Id``)."""
    flows: list[str]
    """The step's flows."""
    state: State
    """The shared state: ``get``, ``set``, ``delete``, ``get_group``, ``clear``, ``update``."""
    logger: StepLogger
    """Structured log lines: ``debug``, ``info``, ``warn``, ``error``."""
    event: Event | None
    """The event this attempt handles (None: an API call, a cron slot)."""

    def __init__(
        self,
        step: RegisteredStep,
        trace_id: str,
        *,
        held: bool,
        logger: StepLogger | None = None,
        run: Run | None = None,
        event: Event | None = None,
    ) -> None:
        self.step = step
        self.trace_id = trace_id
        self.flows = list(step.config.flows)
        self.held = held
        self.state = AttemptState() if held else StateStore()
        self.logger = logger or StepLogger(step.name, trace_id, run=run)
        self.event = event
        self._emits: list[tuple[str, Any, dict[str, Any]]] = []
        self._sent = 0  # emits written through (not held)
        self._trace_events: int | None = None  # the trace's events, counted once

    def emit(
        self,
        topic: str | EmitMessage,
        data: Any = None,
        *,
        delay: float | None = None,
        idempotency_key: str | int | None = None,
    ) -> None:
        """Emit ``data`` on ``topic`` (also ``emit({"topic": ..., "data": ...})``).

        ``delay`` (seconds) delivers it later; ``idempotency_key`` delivers it once
        per key, however many times it is emitted. Data JSON cannot hold as given
        (``NotJSON``) or that a subscriber's ``input`` refuses (``InvalidEmit``) raises
        here, at once: in a background attempt, a final error (not retried).
        """
        options: dict[str, Any] = {"delay": delay, "idempotency_key": idempotency_key}
        if isinstance(topic, dict):
            topic, data, options = self._unpack(topic, data, options)
        declared = self.step.config.emit_topics
        if topic not in declared:
            raise UndeclaredEmit(
                f"step {self.step.name!r} ({self.step.file}) emitted {topic!r}, which is "
                f"not in its emits {sorted(declared)}; add {topic!r} to config.emits "
                "or emit a declared topic"
            )
        self._check_depth(topic)
        data = json_copy({} if data is None else data, f"data emitted on {topic!r}")
        check_emit(topic, data, self.step)
        if self.held:
            self._emits.append((topic, data, options))
        else:
            self._send(topic, data, options)
            self._sent += 1

    @staticmethod
    def _unpack(
        message: Mapping[str, Any], data: Any, options: dict[str, Any]
    ) -> tuple[str, Any, dict[str, Any]]:
        unknown = set(message) - {"topic", "data", *options}
        if "topic" not in message or unknown:
            raise TypeError(
                f'emit takes ("topic", data) or {{"topic": ..., "data": ...}}, not {message!r}'
            )
        options = {name: message.get(name, value) for name, value in options.items()}
        return message["topic"], message.get("data", data), options

    def _check_depth(self, topic: str) -> None:
        depth = 0 if self.event is None else self.event.depth + 1
        limit = workflow_settings.MAX_DEPTH
        if depth > limit:
            raise EmitTooDeep(
                f"{self.step.name} emitted {topic!r} at depth {depth} of trace "
                f"{self.trace_id}, deeper than WORKFLOW['MAX_DEPTH'] ({limit}): "
                f"{describe_cycle(self.event, self.step.name)}. It is not delivered; break "
                "the cycle (or emit only while there is work left), or raise MAX_DEPTH"
            )
        if depth >= COUNTED_FROM:
            self._check_size(topic, depth)

    def _check_size(self, topic: str, depth: int) -> None:
        if self._trace_events is None:
            self._trace_events = Event.objects.filter(trace_id=self.trace_id).count()
        events = self._trace_events + len(self._emits) + self._sent + 1  # with this one
        limit = workflow_settings.MAX_TRACE_EVENTS
        if events > limit:
            raise TraceTooLarge(
                f"{self.step.name} emitted {topic!r} at depth {depth} of trace "
                f"{self.trace_id}, which would hold {events} events, more than "
                f"WORKFLOW['MAX_TRACE_EVENTS'] ({limit}): "
                f"{describe_cycle(self.event, self.step.name)}. It is not delivered; emit "
                "fewer events per run, break the cycle, or raise MAX_TRACE_EVENTS"
            )

    def _send(self, topic: str, data: Any, options: dict[str, Any]) -> None:
        bus.emit(
            topic,
            data,
            trace_id=self.trace_id,
            emitted_by=self.step.name,
            caused_by=self.event,
            check=False,  # checked by emit(), when the handler emitted it
            **options,
        )

    def holds_writes(self) -> bool:
        """True if ``commit()`` has something to write (held emits or state writes)."""
        held_state = isinstance(self.state, AttemptState) and self.state.holds_writes()
        return bool(self._emits) or held_state

    def commit(self) -> None:
        """Write what a background attempt held: state first, then its emits, in the
        caller's transaction. Once per transaction: what it holds is kept, so a
        transaction that rolls back (a deadlock, a lost connection) can be retried."""
        if isinstance(self.state, AttemptState):
            self.state.apply()
        if self.held:
            for topic, data, options in self._emits:
                self._send(topic, data, options)


def describe_cycle(event: Event | None, step_name: str, longest: int = 64) -> str:
    """The steps whose emits led to ``event``, as the cycle where they repeat: "the steps
    A -> B -> A form a cycle (topics 'a', 'b')"."""
    chain: list[tuple[str, str | None]] = [
        (step_name, None)
    ]  # newest first: (step, topic it emitted)
    seen = event
    while seen is not None and len(chain) <= longest:
        chain.append((seen.emitted_by, seen.topic))
        cause = Event.objects.filter(pk=seen.caused_by_id) if seen.caused_by_id else None
        seen = cause.only("emitted_by", "topic", "caused_by").first() if cause else None
    steps = [name for name, _ in chain]
    again = steps.index(step_name, 1) if step_name in steps[1:] else len(steps) - 1
    loop = list(reversed(steps[: again + 1]))
    topics = sorted({topic for _, topic in chain[1 : again + 1] if topic})
    shown = ", ".join(repr(t) for t in topics)
    return f"the steps {' -> '.join(loop)} form a cycle (topics {shown})"
