"""Emit: record an event and one delivery per subscriber, then wake the workers.

This is the only module that talks to django-q2. A django-q2 job carries nothing but
delivery ids (never user data), and is sent only after the transaction that recorded
the deliveries commits: an event emitted in a transaction that rolls back is never
delivered. If the process dies between the commit and the job, the ticker's sweeper
finds the delivery and sends the job.

A job carries several deliveries: those of emits that commit while this process is
sending another job go together in the next jobs (``Waker``), spread over the
cluster's workers, up to ``WAKE_BATCH`` per job. An idle process sends an emit's jobs
at once; a busy one sends fewer jobs than deliveries, which is what keeps the runtime
from being slower than the queue under it.
"""

import logging
import math
import os
import threading
from contextlib import nullcontext
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, connection, router, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.tasks import async_task

from . import postgres, signals
from .jsonutil import json_copy
from .models import Delivery, Event, Trace, new_trace_id
from .policy import QueuePolicy
from .registry import registry

logger = logging.getLogger("workflow")
WAKE = "workflow.executor.wake"
WAKE_BATCH = 16  # delivery ids per job, at most (a worker has THREADS handler slots)


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
    if idempotency_key is None and connection.vendor == "postgresql":
        return _record_in_one_statement(fields, new_trace, now, delay)
    with transaction.atomic():
        event, created = _record(fields, idempotency_key, now)
        if created and new_trace:
            Trace.objects.create(trace_id=trace_id, entry_step=emitted_by, started_at=now)
        if not created:
            return event
        deliveries = Delivery.objects.bulk_create(
            [delivery_for(step, event, now, delay) for step in registry.subscribers(topic)]
        )
        transaction.on_commit(after_commit(event, deliveries), robust=True)
    return event


def _record_in_one_statement(fields, new_trace, now, delay):
    """``emit`` on PostgreSQL without an idempotency key: the same rows in one statement
    (an implicit transaction of its own, or part of the caller's)."""
    event = Event(**fields, created_at=now)
    trace = None
    if new_trace:
        trace = Trace(trace_id=event.trace_id, entry_step=event.emitted_by, started_at=now)
    steps = registry.subscribers(event.topic)
    deliveries = [delivery_for(step, event, now, delay) for step in steps]
    postgres.record_emit(event, trace, deliveries)
    transaction.on_commit(after_commit(event, deliveries), robust=True)
    return event


def after_commit(event, deliveries):
    """What runs once the emit commits: a named function, which Django's robust
    ``on_commit`` can name in its log if it fails (a ``partial`` breaks that log)."""

    def committed():
        _committed(event, deliveries)

    return committed


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
    waker().wake([d.pk for d in deliveries if d.due_at <= now])
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
            try:
                mark_enqueued(sent)
            except DatabaseError:
                if connection.in_atomic_block:  # the ORM broker's jobs roll back with it
                    raise
                # A hint lost: the sweeper may send these a second, harmless wake-up.
                logger.warning("Could not mark deliveries %s as enqueued", sent, exc_info=True)
    return sent


def mark_enqueued(delivery_ids):
    """Mark those of ``delivery_ids`` still waiting for their first run as carried by a
    job. On PostgreSQL, rows a claim holds are skipped (a claim clears the mark anyway),
    so the mark never waits on a claim, nor two of them on each other in turn."""
    if connection.vendor == "postgresql":
        postgres.mark_enqueued(delivery_ids, timezone.now())
        return
    Delivery.objects.filter(
        pk__in=delivery_ids, status=Delivery.Status.PENDING, attempts=0, enqueued_at__isnull=True
    ).update(enqueued_at=timezone.now())


class Waker:
    """Sends the wake-ups of this process's emits, those that commit together at once.

    The thread that finds no job being sent sends its own deliveries' jobs, and before
    it returns, those of every emit that committed meanwhile (in other threads, which
    return at once). An emit alone is sent at once, by its own thread; under load the
    jobs carry several deliveries each. Whoever adds ids after the sender's last look
    finds the sender gone and sends them itself, so none is left behind. If sending
    fails, the deliveries it held stay unmarked and the sweeper sends them.
    """

    def __init__(self):
        self.pending = []
        self.guard = threading.Lock()  # over ``pending``
        self.sending = threading.Lock()  # held by the thread sending jobs

    def wake(self, delivery_ids):
        if not delivery_ids:
            return
        with self.guard:
            self.pending.extend(delivery_ids)
        while self.sending.acquire(blocking=False):
            try:
                with self.guard:
                    ids, self.pending = self.pending, []
                if ids:
                    wake(ids)
            finally:
                self.sending.release()
            with self.guard:
                if not self.pending:
                    return


_waker = Waker()


def waker():
    return _waker


def _new_waker_after_fork():
    """A forked child may inherit a lock some thread of its parent held: it starts anew."""
    global _waker
    _waker = Waker()


os.register_at_fork(after_in_child=_new_waker_after_fork)


def enqueue(delivery_ids):
    """Send the wake-up jobs of ``delivery_ids``, up to ``WAKE_BATCH`` per job; returns
    those sent. A failure leaves the rest to the sweeper."""
    sent = []
    per_job = job_size(len(delivery_ids))
    try:
        with jobs_transaction():
            for start in range(0, len(delivery_ids), per_job):
                ids = list(delivery_ids[start : start + per_job])
                async_task(WAKE, *ids, task_name=job_name(ids), broker=broker())
                sent.extend(ids)
    except Exception:
        if _orm_broker():
            sent = []  # rolled back with their transaction
        unsent = [i for i in delivery_ids if i not in sent]
        logger.exception("Could not enqueue deliveries %s; the sweeper will", unsent)
        Delivery.objects.filter(pk__in=unsent).update(enqueued_at=None)
    return sent


def job_size(count):
    """Deliveries per job for ``count`` to send: spread over the cluster's workers (two
    deliveries, two workers: a job each, so CPU-bound handlers do not share a process),
    at most ``WAKE_BATCH`` per job."""
    return max(1, min(WAKE_BATCH, math.ceil(count / max(Conf.WORKERS or 1, 1))))


def job_name(ids):
    """``delivery-7``, or ``delivery-7+15`` for a job that carries 15 more."""
    return f"delivery-{ids[0]}" + (f"+{len(ids) - 1}" if len(ids) > 1 else "")


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
