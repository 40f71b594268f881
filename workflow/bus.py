"""Emit: record an event and one delivery per subscriber, then wake the workers.

This is the only module that talks to django-q2. A django-q2 job carries nothing but
a delivery id (never user data), and is sent only after the transaction that recorded
the delivery commits: an event emitted in a transaction that rolls back is never
delivered. If the process dies between the commit and the job, the ticker's sweeper
finds the delivery and sends the job.
"""

import logging
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from . import signals
from .jsonutil import json_copy
from .models import Delivery, Event, new_trace_id
from .policy import QueuePolicy
from .registry import registry

logger = logging.getLogger("workflow")
WAKE = "workflow.executor.wake"


def emit(topic, data, *, trace_id=None, emitted_by="", delay=None):
    """Record ``topic`` with ``data`` for every subscriber; returns the ``Event``.

    Called inside a transaction, the event is part of it and is delivered only if
    it commits. ``delay`` (seconds) makes the deliveries due later.
    """
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"emit needs a topic name, not {topic!r}")
    data = json_copy(data, f"data emitted on {topic!r}")
    now = timezone.now()
    trace_id = trace_id or new_trace_id()
    with transaction.atomic():
        event = Event.objects.create(
            topic=topic, data=data, trace_id=trace_id, emitted_by=emitted_by, created_at=now
        )
        deliveries = Delivery.objects.bulk_create(
            [delivery_for(step, event, now, delay) for step in registry.subscribers(topic)]
        )
        transaction.on_commit(partial(_committed, event, deliveries), robust=True)
    return event


def delivery_for(step, event, now, delay):
    """A delivery of ``event`` to ``step``, due after the emit's or the step's delay."""
    wait = max(delay or 0, QueuePolicy.for_step(step).delay_seconds)
    return Delivery(
        event=event,
        step_name=step.name,
        trace_id=event.trace_id,
        due_at=now + timedelta(seconds=wait),
        enqueued_at=None if wait else now,
        created_at=now,
    )


def _committed(event, deliveries):
    enqueue([d.pk for d in deliveries if d.enqueued_at is not None])
    signals.send(signals.event_emitted, sender=Event, event=event, deliveries=deliveries)


def enqueue(delivery_ids):
    """Send one wake-up job per delivery. A failure leaves them to the sweeper."""
    sent = []
    try:
        for delivery_id in delivery_ids:
            async_task(WAKE, delivery_id, task_name=f"delivery-{delivery_id}")
            sent.append(delivery_id)
    except Exception:
        unsent = [i for i in delivery_ids if i not in sent]
        logger.exception("Could not enqueue deliveries %s; the sweeper will", unsent)
        Delivery.objects.filter(pk__in=unsent).update(enqueued_at=None)
    return sent
