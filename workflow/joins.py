"""Joins: an event step that runs once, when every topic it subscribes to has arrived
for one key taken from the events' data (the gather of a saga).

    config = EventStep(
        name="ConfirmBooking",
        subscribes=["flight.reserved", "hotel.reserved", "car.reserved"],
        join={"key": "bookingId", "timeout": 30, "on_timeout": "booking.join_timed_out"},
        emits=["booking.confirmed"],
    )

    def handler(input, ctx):  # {"flight.reserved": {...}, "hotel.reserved": {...}, ...}
        ...

Each event is delivered to the step as any other, and its attempt records the arrival
in the step's ``JoinState`` for the key (in a transaction of its own, the row locked):
arrivals that leave topics missing succeed at once, saying what the join waits for;
the one that completes the set runs the handler with each topic's data (``input``, if
declared, validates that dict). Arrivals racing on several workers and clusters make
exactly one run: the completing arrival is recorded, and only its delivery (its
retries and replays included) runs the handler.

Nothing is lost silently. ``timeout`` seconds after the first arrival a join still
missing topics times out: the ticker emits ``on_timeout`` (in the first arrival's
trace, by the step) with ``{<key>: value, "join", "key", "value", "reason":
"timeout", "received": {topic: data}, "missing": [topics]}`` (the key's field by its own
name too, as in the arrivals). An arrival after the join ran or timed out, or a second
event of a topic already received, is emitted on ``on_timeout`` too, by its delivery:
``{<key>: value, "join", "key", "value", "reason": "late" | "duplicate", "topic",
"data", "status"}``. A step subscribing to ``on_timeout`` compensates (releases what was done).
"""

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .errors import InvalidInput
from .keys import column_key
from .models import JoinState

Status = JoinState.Status
EXPIRED_PER_TICK = 100
KEY_LENGTH = JoinState._meta.get_field("key").max_length


@dataclass
class Arrival:
    """What one delivery's arrival means: ``parts`` to run the handler with (it
    completed the join), or the topics still ``missing``, or a ``late`` event to hand
    to ``on_timeout``."""

    parts: dict[str, Any] | None = None
    missing: list[str] = field(default_factory=list)
    late: dict[str, Any] | None = None


def key_of(step, data):
    """The join key's value in an arrival's ``data`` (``InvalidInput`` if it lacks it)."""
    name = step.config.join["key"]
    if not isinstance(data, dict) or name not in data:
        raise InvalidInput(
            f"{step.name} joins by {name!r}, which this event's data lacks: "
            f"{json.dumps(data, default=str)[:200]}"
        )
    return data[name]


def arrive(step, delivery):
    """Record the arrival of ``delivery``'s event at ``step``'s join; its ``Arrival``."""
    event, join = delivery.event, step.config.join
    value = key_of(step, event.data)
    key = column_key(json.dumps(value, sort_keys=True, default=str), KEY_LENGTH)
    now = timezone.now()
    with transaction.atomic():
        state = _locked(step.name, key, delivery.trace_id, now + timedelta(seconds=join["timeout"]))
        part = state.parts.get(event.topic)
        if state.status == Status.OPEN and part is None:
            state.parts[event.topic] = {"event": event.pk, "data": event.data}
            part = state.parts[event.topic]
            if not missing_of(step, state):
                state.status, state.fired_event_id, state.finished_at = Status.FIRED, event.pk, now
            state.save()
    if part is None:  # it arrived after the join ran or timed out
        return Arrival(late=late_data(step, state, value, event, "late"))
    if part["event"] != event.pk:  # another event of a topic already received
        return Arrival(late=late_data(step, state, value, event, "duplicate"))
    if state.status == Status.FIRED and state.fired_event_id == event.pk:
        return Arrival(parts={topic: got["data"] for topic, got in state.parts.items()})
    if state.status == Status.OPEN:
        return Arrival(missing=missing_of(step, state))
    # Counted before the join ended: its data ran with the join, or went out with the
    # timeout's "received". Nothing is left to do.
    return Arrival()


def _locked(step_name, key, trace_id, deadline):
    """The join's row for ``key``, locked (made if it is the first arrival)."""
    rows = JoinState.objects.select_for_update()
    state = rows.filter(step_name=step_name, key=key).first()
    if state is not None:
        return state
    try:
        with transaction.atomic():
            return JoinState.objects.create(
                step_name=step_name, key=key, trace_id=trace_id, deadline=deadline
            )
    except IntegrityError:  # another arrival made it first: wait for its lock
        return rows.get(step_name=step_name, key=key)


def missing_of(step, state):
    return [topic for topic in step.config.subscribes if topic not in state.parts]


def late_data(step, state, value, event, reason):
    return {
        step.config.join["key"]: value,  # as in the arrivals: a fifo step may group by it
        "join": step.name,
        "key": step.config.join["key"],
        "value": value,
        "reason": reason,
        "topic": event.topic,
        "data": event.data,
        "status": state.status,
    }


def report(step, arrival, ctx):
    """An arrival that runs no handler: its log line, and a late one emitted on the
    join's ``on_timeout`` topic (held with the attempt, as a handler's emits are)."""
    if arrival.late is not None:
        ctx.logger.warn(
            "Join arrival handed to its timeout topic",
            reason=arrival.late["reason"],
            topic=arrival.late["topic"],
            status=arrival.late["status"],
        )
        ctx.emit(step.config.join["on_timeout"], arrival.late)
    elif arrival.missing:
        ctx.logger.info("Join waiting", missing=arrival.missing)


def expire(registry, now=None):
    """Time out the open joins past their deadline: each emits the step's
    ``on_timeout`` with what it received and what is missing, once (a compare-and-set
    on its status, so two tickers never both do). Returns how many timed out."""
    from . import bus  # bus imports the registry's steps; joins is imported by the runner

    now = now or timezone.now()
    due = JoinState.objects.filter(status=Status.OPEN, deadline__lte=now)
    expired = 0
    for pk in due.values_list("pk", flat=True)[:EXPIRED_PER_TICK]:
        with transaction.atomic():
            if not JoinState.objects.filter(pk=pk, status=Status.OPEN).update(
                status=Status.TIMED_OUT, finished_at=now
            ):
                continue  # fired meanwhile, or timed out by another ticker
            state = JoinState.objects.get(pk=pk)
            step = registry.get(state.step_name)
            if step is None or not getattr(step.config, "join", None):
                continue  # the step is gone: nothing to hand the join to
            received = {topic: got["data"] for topic, got in state.parts.items()}
            data = {
                step.config.join["key"]: json.loads(state.key),
                "join": step.name,
                "key": step.config.join["key"],
                "value": json.loads(state.key),
                "reason": "timeout",
                "received": received,
                "missing": missing_of(step, state),
            }
            # Not checked against the subscribers' input: a refusal would keep the join
            # open and retried every tick; a delivery that fails is a dead letter to see.
            bus.emit(
                step.config.join["on_timeout"],
                data,
                trace_id=state.trace_id,
                emitted_by=step.name,
                check=False,
            )
            expired += 1
    return expired
