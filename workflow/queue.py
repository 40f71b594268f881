"""Everything that knows django-q2: wake-up jobs, the broker, the job function, the cluster.

A job carries nothing but delivery ids (never user data) and only wakes a worker: the
delivery table is the source of truth, and a lost job is found by the sweeper. With
the ORM broker an emit's jobs are written in the transaction that records its
deliveries; with another broker they are sent once it commits (the bridge). Other
wake-ups (the next of a fifo group, a freed place) are sent after their commits: those
that come while this process is sending another job go together in the next jobs
(``Waker``), spread over the cluster's workers, up to ``WAKE_BATCH`` per job.
"""

import logging
import math
import os
import queue
import threading
from contextlib import nullcontext
from typing import Any

from django.db import DatabaseError, connection, connections, reset_queries, router, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signals import post_execute, post_spawn
from django_q.tasks import async_task

from . import doorbell, processes
from .models import Delivery
from .store import store

__all__ = ["OrmBroker", "cluster_class", "connect_signals", "deliver", "wake", "waker"]
# and QClusterCommand

logger = logging.getLogger("workflow")
WAKE = "workflow.queue.deliver"
WAKE_BATCH = 16  # delivery ids per job, at most (a worker has THREADS handler slots)


def deliver(*delivery_ids):
    """The django-q2 job: hand deliveries to this worker process's handler threads.

    A job carries those of the emits that committed together (see ``Waker``); those
    for which no handler slot frees up within ``SLOT_WAIT`` are handed back to the
    sweeper, for an idle worker elsewhere."""
    from .executor import handler_pool  # the worker side, loaded in worker processes

    try:
        processes.leave_if_retiring()
    except SystemExit:
        store.unmark(delivery_ids)  # for the sweeper, at once
        raise
    handler_pool(wake=wake_soon).take(delivery_ids)
    return list(delivery_ids)


def wake_soon(delivery_ids):
    """Send the wake-ups of ``delivery_ids`` with this process's others (``Waker``)."""
    waker().wake(delivery_ids)


def wake(delivery_ids):
    """Send the wake-up jobs of ``delivery_ids``, then mark them as carried by a job.

    Until that mark the sweeper takes them for unwoken: if this process dies between
    their commit and their jobs, they are still delivered (a rare second wake-up is
    harmless: a claim is a compare-and-set). With the ORM broker the jobs and the mark
    are written in one transaction.
    """
    with jobs_transaction():
        sent = enqueue(delivery_ids)
        if sent:
            try:
                store.mark_enqueued(sent)
            except DatabaseError:
                if connection.in_atomic_block:  # the ORM broker's jobs roll back with it
                    raise
                # A hint lost: the sweeper may send these a second, harmless wake-up.
                logger.warning("Could not mark deliveries %s as enqueued", sent, exc_info=True)
    return sent


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
        store.unmark(unsent)
    if sent and _orm_broker():  # the pusher's doorbell, once the jobs are committed
        if connections[Conf.ORM].in_atomic_block:
            transaction.on_commit(ring_the_pusher, using=Conf.ORM)
        else:
            ring_the_pusher()
    return sent


def ring_the_pusher():
    """Tell the ORM broker's pushers on this machine that jobs are waiting (a hint:
    ``workflow.doorbell``)."""
    try:
        doorbell.ring(Conf.ORM)
    except Exception:
        logger.warning("Could not ring the pusher's doorbell", exc_info=True)


def job_size(count):
    """Deliveries per job for ``count`` to send: spread over the cluster's workers (two
    deliveries, two workers: a job each, so CPU-bound handlers do not share a process),
    at most ``WAKE_BATCH`` per job."""
    return max(1, min(WAKE_BATCH, math.ceil(count / max(Conf.WORKERS or 1, 1))))


def job_name(ids):
    """``delivery-7``, or ``delivery-7+15`` for a job that carries 15 more."""
    return f"delivery-{ids[0]}" + (f"+{len(ids) - 1}" if len(ids) > 1 else "")


class Waker:
    """Sends the wake-ups of this process, those that come together at once.

    The thread that finds no job being sent sends its own deliveries' jobs, and before
    it returns, those of every wake-up that came meanwhile (from other threads, which
    return at once). A wake-up alone is sent at once, by its own thread; under load the
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
    return _waker  # anew in each forked process


def _new_waker_after_fork():
    """A forked child may inherit a lock some thread of its parent held: it starts anew."""
    global _waker
    _waker = Waker()


os.register_at_fork(after_in_child=_new_waker_after_fork)

_brokers: dict[int, Any] = {}  # pid -> django-q2's broker


def broker():
    """This process's django-q2 broker, made once (async_task otherwise makes one, and
    with Redis a new connection, for every job)."""
    pid = os.getpid()
    if pid not in _brokers:
        _brokers.clear()
        _brokers[pid] = get_broker()
    return _brokers[pid]


class OrmBroker(ORM):
    """django-q2's ORM broker (the embedded default's), with fewer writes per job.

    django-q2's takes each of up to ``bulk`` jobs with an UPDATE of its own, and
    reconnects to the database before each look at the queue and each acknowledgement
    (a web request would, but the pusher and monitor are no requests). On SQLite every
    write waits for the one write lock, which a busy web server holds most of the time,
    so a pusher that needs six of them per poll falls behind, and a monitor that
    deletes each done job in a write of its own too. This one looks at the queue
    without writing, takes what it found in one transaction (one SELECT ... FOR UPDATE
    SKIP LOCKED on PostgreSQL, so two clusters never take the same job), deletes done
    jobs together (``Acknowledger``) and keeps its connection while it is usable. The
    jobs and their lock are django-q2's, unchanged.
    """

    def get_connection(self, list_key=None):
        db = connections[Conf.ORM]
        if db.connection is not None and db.get_autocommit() and db.errors_occurred:
            if db.is_usable():
                db.errors_occurred = False
            else:
                db.close()  # the next query connects again
        return OrmQ.objects.using(Conf.ORM)

    def acknowledge(self, task_id):
        """Delete the job once done: from a thread of this process (the monitor's), which
        deletes those acknowledged meanwhile in one statement. A job whose deletion is
        lost with the process is handed out again after ``retry`` seconds, and wakes
        nothing (its deliveries are done)."""
        _acknowledger().put(task_id)

    def dequeue(self):
        queued = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())
        if not queued.exists():
            # As django-q2's, an empty queue spares the CPU for ``poll`` seconds; but a
            # job sent from this machine rings the doorbell and ends the wait at once.
            doorbell.wait(Conf.POLL, Conf.ORM)
            return None
        with transaction.atomic(using=Conf.ORM):
            if connections[Conf.ORM].features.has_select_for_update_skip_locked:
                queued = queued.select_for_update(skip_locked=True)
            tasks = list(queued.order_by("id").values_list("id", "payload")[: Conf.BULK])
            OrmQ.objects.using(Conf.ORM).filter(id__in=[pk for pk, _ in tasks]).update(
                lock=self.timeout(None)
            )
        return tasks


class Acknowledger:
    """Deletes acknowledged jobs of the ORM broker, those that come together at once."""

    def __init__(self):
        self.pid = os.getpid()
        self.ids = queue.SimpleQueue()
        threading.Thread(target=self._run, name="workflow-acks", daemon=True).start()

    def put(self, task_id):
        self.ids.put(task_id)

    def _run(self):
        while True:
            ids = [self.ids.get()]
            while not self.ids.empty():
                ids.append(self.ids.get_nowait())
            try:
                OrmQ.objects.using(Conf.ORM).filter(pk__in=ids).delete()
            except Exception:
                logger.warning("Could not delete %d done jobs", len(ids), exc_info=True)
                connections[Conf.ORM].close()


_acknowledgers: dict[int, Acknowledger] = {}
_acknowledgers_lock = threading.Lock()


def _acknowledger():
    """This process's ``Acknowledger`` (a forked process makes its own)."""
    with _acknowledgers_lock:
        pid = os.getpid()
        if pid not in _acknowledgers:
            _acknowledgers.clear()
            _acknowledgers[pid] = Acknowledger()
        return _acknowledgers[pid]


def jobs_waiting():
    """How many jobs wait in the broker for a worker (0 if the broker cannot tell)."""
    try:
        return broker().queue_size() or 0
    except Exception:
        logger.warning("Could not read the broker's queue size", exc_info=True)
        return 0


def _orm_broker():
    return Conf.ORM is not None and router.db_for_write(Delivery) == Conf.ORM


def jobs_share_the_transaction():
    """Whether the broker keeps its jobs in the deliveries' database (the ORM broker):
    then an emit's jobs are written in the transaction that records it (``bridge``)."""
    return _orm_broker()


def jobs_transaction():
    """With the ORM broker, jobs sent together are one transaction: one commit, and
    django-q2 does not close the database connection before each job as it does in
    autocommit mode. A failure sends none of them."""
    return transaction.atomic(using=Conf.ORM) if _orm_broker() else nullcontext()


def cluster_class():
    """django-q2's ``Cluster`` (imported when a cluster starts, not by web processes)."""
    from django_q.cluster import Cluster

    return Cluster


def __getattr__(name):
    """``QClusterCommand``: django-q2's ``qcluster`` command, which ``manage.py qcluster``
    extends (imported on use: it brings the cluster's modules along)."""
    if name == "QClusterCommand":
        from django_q.management.commands.qcluster import Command

        return Command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def connect_signals():
    """The worker processes' hooks: on spawn, the executor's (SIGTERM exits through
    Python, so the handler pool drains); after each job, forget the queries DEBUG
    keeps (django-q2's monitor saves and acknowledges each job, and no request ever
    clears them)."""
    from .processes import worker_started

    post_spawn.connect(worker_started, dispatch_uid="workflow.worker_started")
    post_execute.connect(_forget_queries, dispatch_uid="workflow.forget_queries")


def _forget_queries(**kwargs):
    reset_queries()
