"""Emit: check an event, record it with one delivery per subscriber, then announce it.

The store records the event, its new trace (if it starts one) and its deliveries, as
part of the caller's transaction: an event emitted in a transaction that rolls back is
never delivered. ``event_recorded`` is sent in that transaction, ``event_emitted``
once it commits; the bridge, their receiver, sends the wake-up jobs (in the
transaction with the ORM broker, after it with another: ``workflow.bridge``). If the
process dies between a commit and its jobs, the ticker's sweeper finds the deliveries
and sends them.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import signals
from .contracts import check_emit
from .jsonutil import json_copy
from .models import Delivery, Event, Trace, new_trace_id
from .policy import QueuePolicy
from .registry import RegisteredStep, registry
from .store import gates, store
from .topics import check_name


def emit(
    topic: str,
    data: Any,
    *,
    trace_id: str | None = None,
    emitted_by: str = "",
    delay: float | None = None,
    idempotency_key: str | int | None = None,
    caused_by: Event | None = None,
    check: bool = True,
) -> Event:
    """Record ``topic`` with ``data`` for every subscriber; returns the ``Event``.

    Called inside a transaction, the event is part of it and is delivered only if
    it commits. ``delay`` (seconds) makes the deliveries due later. With an
    ``idempotency_key``, a topic is delivered once per key: a later emit with the
    same key returns the first event and delivers nothing. ``caused_by`` is the event
    whose delivery emitted this one (its depth is one more).

    The data must be JSON as given (else ``NotJSON``) and, unless ``check=False``
    (replaying test data on purpose), pass the emitter's declared schema and each
    subscriber's ``input`` (else ``InvalidEmit``, see ``contracts``): nothing is
    recorded then.
    """
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"emit needs a topic name, not {topic!r}")
    check_name(topic, "emit")  # a TopicError (a ValueError) for a pattern
    if data is None:
        raise ValueError(
            f"the data emitted on {topic!r} is None; an event's data is JSON: "
            "emit {} for an event that carries nothing"
        )
    data = json_copy(data, f"data emitted on {topic!r}")
    if check:
        check_emit(topic, data, registry.get(emitted_by) if emitted_by else None)
    if idempotency_key is not None:
        idempotency_key = str(idempotency_key)
        if not idempotency_key or len(idempotency_key) > 200:
            raise ValueError("an idempotency_key must be 1 to 200 characters")
    now = timezone.now()
    new_trace = not trace_id
    event = Event(
        topic=topic,
        data=data,
        trace_id=trace_id or new_trace_id(),
        emitted_by=emitted_by,
        depth=0 if caused_by is None else caused_by.depth + 1,
        caused_by=caused_by,
        created_at=now,
    )
    trace = None
    if new_trace:
        trace = Trace(trace_id=event.trace_id, entry_step=emitted_by, started_at=now)
    deliveries = [delivery_for(step, event, now, delay) for step in registry.subscribers(topic)]
    with transaction.atomic(savepoint=False):  # the caller's, if it has one
        event, created = store.record_emit(event, trace, deliveries, idempotency_key)
        if created:
            signals.send(signals.event_recorded, sender=Event, event=event, deliveries=deliveries)
            transaction.on_commit(after_commit(event, deliveries), robust=True)
    return event


def delivery_for(
    step: RegisteredStep, event: Event, now: datetime, delay: float | None
) -> Delivery:
    """A delivery of ``event`` to ``step``, due after the emit's or the step's delay (or
    its debounce), with its flow control's key and priority."""
    policy = QueuePolicy.for_step(step)
    wait = max(delay or 0, policy.delay_seconds)
    flow = getattr(step.config, "flow_control", None)
    if flow is None:
        key, priority = None, 0
    else:
        key, priority = flow.key_of(event.data), flow.priority_of(event.data)
    due_at = now + timedelta(seconds=wait)
    if flow is not None and flow.debounce:  # it waits for a newer event to supersede it
        due_at = max(due_at, gates.debounce_due(step.name, flow, key, now))
    return Delivery(
        event=event,
        step_name=step.name,
        trace_id=event.trace_id,
        due_at=due_at,
        message_group=policy.message_group(event.data),
        flow_key=key,
        priority=priority,
        created_at=now,
    )


def after_commit(event: Event, deliveries: list[Delivery]) -> Callable[[], None]:
    """What runs once the emit commits: a named function, which Django's robust
    ``on_commit`` can name in its log if it fails (a ``partial`` breaks that log)."""

    def committed() -> None:
        signals.send(signals.event_emitted, sender=Event, event=event, deliveries=deliveries)

    return committed
