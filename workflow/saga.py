"""Sagas: parts done side by side, and on a failure or a timeout, each part that
succeeded undone, exactly once (the compensation).

    trip = Saga(
        name="trip",
        key="bookingId",
        parts=["flight", "hotel", "car"],
        succeeded="{part}.reserved",     # a part done (its data is what to undo)
        failed="{part}.failed",          # a part refused: the saga aborts
        compensate="{part}.released",    # emitted to undo a part that succeeded
        completed="booking.confirmed",   # the saga is done (a join of the parts emits it)
        timed_out="booking.join_timed_out",  # the join's on_timeout: the saga aborts
    )

    # bookings/steps/update_booking_step.py: the saga's own step
    config, handler = trip.step(name="UpdateBooking", flows=["trip-booking"])

The saga's step subscribes to every part's ``succeeded`` and ``failed`` topics and to
``completed`` and ``timed_out``, in a fifo queue grouped by ``key``: a saga's outcomes
are taken one at a time, in the order they were emitted, and ``record`` (a pure
function of the ledger and one outcome) decides alone:

* ``succeeded`` records the part; in an aborted saga it is compensated at once (a part
  that succeeds after the abort is undone too);
* ``failed`` records the part and aborts a running saga, with the event's ``reason``;
* ``timed_out`` aborts a running saga (a join's ``late`` and ``duplicate`` hand-ons are
  left to the ``succeeded`` topic they also came on);
* ``completed`` completes a running saga; an aborted one stays aborted.

On the abort, each part that succeeded is compensated: its ``compensate`` topic is
emitted with the data of its success, once, in the same commit as the ledger. So an
aborted saga never completes, a completed one never loses a part, and a part is
undone at most once however the outcomes race. The ledger is kept in state (group
``saga:<name>``, one key per saga) and read with ``Saga.ledger``; a second success of
a part already done (another reservation, say) is compensated at once, its first kept.
"""

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import StepConfigError
from .steps import EventStep
from .topics import TopicError, check_name

Ledger = dict[str, Any]
Compensation = tuple[str, dict[str, Any]]  # (part, the data of its success)
RUNNING, COMPLETED, ABORTED = "running", "completed", "aborted"
SUCCEEDED, FAILED, COMPENSATED = "succeeded", "failed", "compensated"


@dataclass(frozen=True)
class Saga:
    """A saga's topics and its ledger (see the module's docstring)."""

    name: str
    key: str
    parts: Sequence[str]
    succeeded: str = "{part}.succeeded"
    failed: str = "{part}.failed"
    compensate: str = "{part}.compensate"
    completed: str = ""
    timed_out: str = ""
    _by_topic: dict[str, tuple[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise StepConfigError(f"a saga's name is a word such as 'trip', not {self.name!r}")
        if not isinstance(self.key, str) or not self.key:
            raise StepConfigError(
                "a saga needs a 'key': the field of each event's data naming its saga, "
                "e.g. key='bookingId'"
            )
        parts = tuple(self.parts) if not isinstance(self.parts, str) else ()
        if not parts or not all(isinstance(p, str) and p for p in parts):
            raise StepConfigError(
                "a saga's parts are names, e.g. parts=['flight', 'hotel', 'car'], "
                f"not {self.parts!r}"
            )
        object.__setattr__(self, "parts", parts)
        by_topic: dict[str, tuple[str, str]] = {}
        for kind in ("succeeded", "failed", "compensate"):
            template = getattr(self, kind)
            if "{part}" not in template:
                raise StepConfigError(
                    f"a saga's {kind!r} is a topic with {{part}} in it, e.g. "
                    f"{kind}='{{part}}.{kind}', not {template!r}"
                )
            for part in parts:
                topic = template.format(part=part)
                _check(topic, f"saga {kind}")
                if kind != "compensate":
                    by_topic[topic] = (kind, part)
        for kind in ("completed", "timed_out"):
            if topic := getattr(self, kind):
                _check(topic, f"saga {kind}")
                by_topic[topic] = (kind, "")
        object.__setattr__(self, "_by_topic", by_topic)

    @property
    def group(self) -> str:
        """The state group of its ledgers."""
        return f"saga:{self.name}"

    def topics(self) -> list[str]:
        """What the saga's step subscribes to."""
        return list(self._by_topic)

    def compensations(self) -> list[str]:
        """The topics it emits to undo a part."""
        return [self.compensate.format(part=part) for part in self.parts]

    def new(self) -> Ledger:
        """A running saga with no part done yet."""
        return {"status": RUNNING, "reason": None, "parts": dict.fromkeys(self.parts)}

    def ledger(self, state: Any, key: Any) -> Ledger | None:
        """The ledger of the saga ``key`` (None before its first outcome)."""
        return state.get(self.group, str(key))

    def record(self, ledger: Ledger, topic: str, data: dict[str, Any]):
        """One outcome of a saga: ``(the ledger after it, [(part, data to undo)])``. A pure
        function; ``ledger`` is left as it was."""
        kind, part = self._by_topic.get(topic, ("", ""))
        ledger = copy.deepcopy(ledger)
        parts = ledger["parts"]
        undo: list[Compensation] = []

        def abort(reason: str) -> None:
            ledger["status"], ledger["reason"] = ABORTED, reason
            for name, done in parts.items():
                if done and done["status"] == SUCCEEDED:
                    done["status"] = COMPENSATED
                    undo.append((name, done["data"]))

        if kind == "succeeded":
            done = parts.get(part)
            if done is None or done["status"] == FAILED:
                parts[part] = done = {"status": SUCCEEDED, "data": data}
                if ledger["status"] == ABORTED:
                    done["status"] = COMPENSATED
                    undo.append((part, data))
            elif done["data"] != data:  # a second success of the part: undo the extra one
                undo.append((part, data))
        elif kind == "failed":
            if parts.get(part) is None:
                parts[part] = {"status": FAILED, "data": data}
            if ledger["status"] == RUNNING:
                abort(str(data.get("reason") or f"{part} failed"))
        elif kind == "timed_out" and data.get("reason") not in ("late", "duplicate"):
            if ledger["status"] == RUNNING:
                missing = [p for p in self.parts if parts[p] is None]
                abort(f"timed out waiting for {', '.join(missing) or 'the rest'}")
        elif kind == "completed" and ledger["status"] == RUNNING:
            ledger["status"] = COMPLETED
        return ledger, undo

    def step(
        self,
        *,
        name: str,
        flows: Sequence[str] = (),
        description: str = "",
        on_change: Callable[[Ledger, Ledger, Any], None] | None = None,
    ) -> tuple[EventStep, Callable[[dict[str, Any], Any], None]]:
        """The saga's step, ``(config, handler)``, for a step file: it records each
        outcome in the ledger and emits the compensations ``record`` decides, in one
        commit. ``on_change(before, after, ctx)`` runs when the ledger changed."""
        config = EventStep(
            name=name,
            description=description or f"Keeps the {self.name} saga; undoes its parts on abort",
            flows=list(flows),
            subscribes=self.topics(),
            infrastructure={"queue": {"type": "fifo", "message_group_id": self.key}},
            emits=[{"topic": topic, "label": "compensate"} for topic in self.compensations()],
        )

        def handler(input: dict[str, Any], ctx: Any) -> None:
            self.handle(input, ctx, on_change)

        handler.__name__ = handler.__qualname__ = f"{name}_handler"
        return config, handler

    def handle(self, data: dict[str, Any], ctx: Any, on_change: Callable | None = None) -> None:
        """The saga step's handler: one outcome (``ctx.event``) into the ledger."""
        value = data.get(self.key)
        if value is None:
            ctx.logger.warn("No saga key", key=self.key, topic=ctx.event.topic)
            return
        before = self.ledger(ctx.state, value) or self.new()
        after, undo = self.record(before, ctx.event.topic, data)
        if after != before:
            ctx.state.set(self.group, str(value), after)
        if after["status"] != before["status"]:
            ctx.logger.info(f"Saga {after['status']}", **{self.key: value}, reason=after["reason"])
        for part, done in undo:
            ctx.logger.info("Compensating", **{self.key: value}, part=part)
            ctx.emit(self.compensate.format(part=part), done)
        if on_change is not None and after != before:
            on_change(before, after, ctx)


def _check(topic: str, field_name: str) -> None:
    try:
        check_name(topic, field_name)
    except TopicError as exc:
        raise StepConfigError(str(exc)) from None
