"""Emit: record an event and one delivery per subscriber, then wake the workers.

This is the only module that talks to django-q2. A django-q2 job carries nothing but
a delivery id (never user data), and is sent only after the transaction that recorded
the delivery commits: an event emitted in a transaction that rolls back is never
delivered. If the process dies between the commit and the job, the ticker's sweeper
finds the delivery and sends the job.
"""

import logging
import os
from contextlib import nullcontext
from datetime import timedelta
from functools import partial

from django.db import IntegrityError, router, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.tasks import async_task

from . import signals
from .jsonutil import json_copy
from .models import Delivery, Event, Trace, new_trace_id
from .policy import QueuePolicy
from .registry import registry

logger = logging.getLogger("workflow")
WAKE = "workflow.executor.wake"


def emit(topic, data, *, trace_id=None, emitted_by="", delay=None, idempotency_key=None):
    """Record ``topic`` with ``data`` for every subscriber; returns the ``Event``.

    Called inside a transaction, the event is part of it and is delivered only if
    it commits. ``delay`` (seconds) makes the deliveries due later. With an
    ``idempotency_key``, a topic is delivered once per key: a later emit with the
    same key returns the first event and delivers nothing.
    """
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"emit needs a topic name, not {topic!r}")
    data = json_copy(data, f"data emitted on {topic!r}")
    if idempotency_key is not None:
        idempotency_key = str(idempotency_key)
        if not idempotency_key or len(idempotency_key) > 200:
            raise ValueError("an idempotency_key must be 1 to 200 characters")
    now = timezone.now()
    new_trace = not trace_id
    trace_id = trace_id or new_trace_id()
    fields = {"topic": topic, "data": data, "trace_id": trace_id, "emitted_by": emitted_by}
    with transaction.atomic():
        event, created = _record(fields, idempotency_key, now)
        if created and new_trace:
            Trace.objects.create(trace_id=trace_id, entry_step=emitted_by, started_at=now)
        if not created:
            return event
        deliveries = Delivery.objects.bulk_create(
            [delivery_for(step, event, now, delay) for step in registry.subscribers(topic)]
        )
        transaction.on_commit(partial(_committed, event, deliveries), robust=True)
    return event


def _record(fields, idempotency_key, now):
    """The new ``(event, True)``, or ``(first event, False)`` for a key already used."""
    if idempotency_key is None:
        return Event.objects.create(**fields, created_at=now), True
    topic = fields["topic"]
    first = Event.objects.filter(topic=topic, idempotency_key=idempotency_key).first()
    if first is not None:
        return first, False
    try:
        with transaction.atomic():  # a savepoint: losing a race leaves the caller's intact
            created = Event.objects.create(
                **fields, idempotency_key=idempotency_key, created_at=now
            )
        return created, True
    except IntegrityError:
        return Event.objects.get(topic=topic, idempotency_key=idempotency_key), False


def delivery_for(step, event, now, delay):
    """A delivery of ``event`` to ``step``, due after the emit's or the step's delay."""
    policy = QueuePolicy.for_step(step)
    wait = max(delay or 0, policy.delay_seconds)
    return Delivery(
        event=event,
        step_name=step.name,
        trace_id=event.trace_id,
        due_at=now + timedelta(seconds=wait),
        message_group=policy.message_group(event.data),
        created_at=now,
    )


def _committed(event, deliveries):
    now = timezone.now()
    wake([d.pk for d in deliveries if d.due_at <= now])
    signals.send(signals.event_emitted, sender=Event, event=event, deliveries=deliveries)


def wake(delivery_ids):
    """Send the wake-up jobs of new deliveries, then mark them as carried by a job.

    Until that mark the sweeper takes them for unwoken: if this process dies between
    its commit and its jobs, they are still delivered (a rare second wake-up is
    harmless: a claim is a compare-and-set). A delivery already claimed is not marked.
    With the ORM broker the jobs and the mark are written in one transaction.
    """
    with jobs_transaction():
        sent = enqueue(delivery_ids)
        if sent:
            Delivery.objects.filter(
                pk__in=sent, status=Delivery.Status.PENDING, attempts=0, enqueued_at__isnull=True
            ).update(enqueued_at=timezone.now())
    return sent


def enqueue(delivery_ids):
    """Send one wake-up job per delivery. A failure leaves them to the sweeper."""
    sent = []
    try:
        with jobs_transaction():
            for delivery_id in delivery_ids:
                async_task(WAKE, delivery_id, task_name=f"delivery-{delivery_id}", broker=broker())
                sent.append(delivery_id)
    except Exception:
        if _orm_broker():
            sent = []  # rolled back with their transaction
        unsent = [i for i in delivery_ids if i not in sent]
        logger.exception("Could not enqueue deliveries %s; the sweeper will", unsent)
        Delivery.objects.filter(pk__in=unsent).update(enqueued_at=None)
    return sent


_brokers = {}


def broker():
    """This process's django-q2 broker, made once (async_task otherwise makes one, and
    with Redis a new connection, for every job)."""
    pid = os.getpid()
    if pid not in _brokers:
        _brokers.clear()
        _brokers[pid] = get_broker()
    return _brokers[pid]


def jobs_waiting():
    """How many jobs wait in the broker for a worker (0 if the broker cannot tell)."""
    try:
        return broker().queue_size() or 0
    except Exception:
        logger.warning("Could not read the broker's queue size", exc_info=True)
        return 0


def _orm_broker():
    return Conf.ORM is not None and router.db_for_write(Delivery) == Conf.ORM


def jobs_transaction():
    """With the ORM broker, jobs sent together are one transaction: one commit, and
    django-q2 does not close the database connection before each job as it does in
    autocommit mode. A failure sends none of them."""
    return transaction.atomic(using=Conf.ORM) if _orm_broker() else nullcontext()
