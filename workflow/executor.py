"""A worker process's threads: claim -> attempt -> record, leases renewed, timeouts kept.

django-q2 runs one job at a time per worker process, one process per core. Step
handlers mostly wait (on mail servers, APIs, the database), so a job here only wakes
the worker: ``take(delivery_ids)`` takes one of ``THREADS`` handler slots for each
delivery and returns. When every slot is busy it waits up to ``SLOT_WAIT`` seconds,
then hands the rest back to the sweeper instead of hoarding them, so an idle worker
elsewhere can take them.

Inside the process a delivery passes three hands, each the same code ``FlowTester``
runs inline: the *claimer* thread claims every delivery woken since its last claim at
once (``store.claim``), a *handler* thread runs the attempt (``runner.attempt``), and
the *recorder* thread records every outcome since its last commit, success, retry and
dead alike, in one transaction (``store.record``), then reports them (``runner.finish``).

The *keeper* thread supervises: it renews the lease of every delivery the process
holds (one UPDATE, every third of the shortest lease), so a healthy handler runs once
however long it takes; and it times out attempts past their handler timeout. A timed
out attempt is recorded as failed and retried by its queue policy; an ``async def``
handler is cancelled, a sync one cannot be: its thread is abandoned (its outcome, if it
ever comes, is dropped) and a new thread takes its slot. A process whose threads are
mostly abandoned retires: it hands back its other work and exits, and django-q2 starts
a new worker in its place.

When the worker process exits (the cluster is stopping), running handlers get
``SHUTDOWN_GRACE`` seconds to finish; the deliveries of those still running, or
claimed and not yet started, are handed back, due at once, for the next worker.
"""

import logging
import os
import queue as queues
import signal
import threading
import time
from multiprocessing import util as mp_util

from django.db import close_old_connections, connection, reset_queries

from . import processes, queue, runner
from .conf import workflow_settings
from .policy import QueuePolicy
from .registry import registry
from .store import store

logger = logging.getLogger("workflow")
HANDED_BACK = "Worker stopped; handed back"
TICK = 0.25  # the keeper's tick, in seconds
RECORD_WAIT = 2.0  # on stopping, how long outcomes already in hand may take to record
CLOSE = object()  # tells a thread of a closing pool to end


def take_all(first, source):
    """``first`` and whatever else ``source`` holds right now (up to a ``CLOSE``, which
    stays there for the next look)."""
    items = [first]
    while True:
        try:
            item = source.get_nowait()
        except queues.Empty:
            return items
        if item is CLOSE:
            source.put(CLOSE)
            return items
        items.append(item)


class Held:
    """A delivery this process claimed and has not recorded yet."""

    def __init__(self, claim):
        self.claim = claim
        self.timeout = runner.timeout_of(claim)
        self.lease = QueuePolicy.for_step(registry.get(claim.step_name)).visibility_timeout
        self.started = None  # time.monotonic() when its handler started
        self.thread = None
        self.settled = False  # its outcome went to the recorder, or it was handed back
        self.abandoned = False  # timed out while its thread still runs the handler

    def overdue(self, now):
        return self.started is not None and not self.settled and now - self.started > self.timeout


class HandlerPool:
    def __init__(self, threads, worker=None, retire=None):
        self.threads = threads
        self.worker = worker or processes.worker_id()
        self.retire = retire or retire_this_worker
        self.slots = threading.BoundedSemaphore(threads)
        self.woken = queues.SimpleQueue()  # delivery ids, each holding a slot
        self.claimed = queues.SimpleQueue()  # Held, waiting for a handler thread
        self.outcomes = queues.SimpleQueue()  # Outcome, waiting for the recorder
        self.held = {}  # delivery id -> Held: claimed here, not yet recorded
        self.abandoned = []  # threads still running a handler that timed out
        self.stopping = self.retiring = False
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.claiming = threading.Lock()
        self.renewed_at = time.monotonic()
        self.closed = threading.Event()
        self.started = []
        # Daemon threads: a handler still running when the process exits (after
        # drain() handed its delivery back) must not hold the exit up.
        self._start(self._claim_loop, "step-claimer")
        self._start(self._record_loop, "step-recorder")
        self._start(self._keep_loop, "step-keeper")
        for number in range(threads):
            self._start(self._serve, f"step-{number}")

    def _start(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        self.started.append(thread)
        thread.start()

    def close(self, timeout=5):
        """End the pool's threads once their work in hand is done (a worker process
        just exits; this is for tests and for embedding the pool elsewhere)."""
        self.closed.set()
        self.woken.put(CLOSE)
        self.outcomes.put(CLOSE)
        for _ in range(self.threads):
            self.claimed.put(CLOSE)
        deadline = time.monotonic() + timeout
        for thread in self.started:
            if thread not in self.abandoned:
                thread.join(max(0, deadline - time.monotonic()))

    def take(self, delivery_ids):
        """Hand each of ``delivery_ids`` to a free thread; those for which none frees up
        within ``SLOT_WAIT`` seconds go back to the sweeper."""
        for n, delivery_id in enumerate(delivery_ids):
            if not self.submit(delivery_id, wait=workflow_settings.SLOT_WAIT):
                self._unmark(list(delivery_ids[n:]))
                return

    def submit(self, delivery_id, wait):
        """Run ``delivery_id`` on a free thread; False if none freed up within ``wait``."""
        if not self.slots.acquire(timeout=wait):
            return False
        self.woken.put(delivery_id)
        return True

    # The claimer ---------------------------------------------------------------

    def _claim_loop(self):
        while (first := self.woken.get()) is not CLOSE:
            ids = take_all(first, self.woken)
            reset_queries()  # with DEBUG on, each connection keeps its queries
            with self.claiming:  # drain() waits for a claim in flight to be held
                items = [] if self.stopping else [Held(c) for c in self._claim(ids)]
                with self.lock:
                    self.held.update((item.claim.pk, item) for item in items)
            if self.stopping and not items:
                self._unmark(ids)
            for item in items:
                self.claimed.put(item)
            for _ in range(len(ids) - len(items)):
                self.slots.release()  # not claimable (done, not due, taken elsewhere)
        connection.close()

    def _claim(self, ids):
        try:
            return store.claim(ids, self.worker)
        except Exception:
            logger.exception("Could not claim deliveries %s; the sweeper will wake them", ids)
            connection.close()
            self._unmark(ids)
            return []

    def _unmark(self, ids):
        try:
            store.unmark(ids)
        except Exception:
            logger.exception("Could not hand back deliveries %s", ids)
            connection.close()

    # Handler threads -----------------------------------------------------------

    def _serve(self):
        try:
            while (item := self.claimed.get()) is not CLOSE:
                if not self._run(item):
                    return  # abandoned: another thread has taken this one's slot
        finally:
            connection.close()

    def _run(self, item):
        """Run one attempt; False if it timed out meanwhile and this thread was abandoned."""
        with self.lock:
            stopping = self.stopping or item.settled
            if not stopping:
                item.started, item.thread = time.monotonic(), threading.current_thread()
        if stopping:
            self._give_up([item])
            self._hand_back([item])
            return True
        close_old_connections()
        try:
            outcome = runner.attempt(item.claim, timeout=item.timeout)
        except Exception:  # the runner's own failure (its handler's are outcomes)
            logger.exception("Delivery %s could not be run", item.claim.pk)
            outcome = None
        finally:
            close_old_connections()
            reset_queries()  # with DEBUG on, worker threads' queries are kept (no requests)
        return self._settle(item, outcome)

    def _settle(self, item, outcome):
        with self.lock:
            late = item.settled  # timed out, or handed back, meanwhile
            if not late:
                item.settled = True
                if outcome is None:  # unrecordable: its lease runs out, and it runs again
                    self.held.pop(item.claim.pk, None)
                self.changed.notify_all()
        if late:  # the outcome is dropped; the step's log says so
            reason = "it timed out" if item.abandoned else "its worker stopped; handed back"
            runner.discard(item.claim, f"{reason} before it finished")
            return not item.abandoned
        if outcome is not None:
            self.outcomes.put(outcome)
        self.slots.release()
        return True

    # The recorder ----------------------------------------------------------------

    def _record_loop(self):
        while (first := self.outcomes.get()) is not CLOSE:
            outcomes = take_all(first, self.outcomes)
            reset_queries()
            results, wake = self._record(outcomes)
            for recorded in results:
                try:
                    runner.finish(recorded)
                except Exception:
                    logger.exception("Could not report run %s", recorded.outcome.claim.run.pk)
            with self.lock:
                for outcome in outcomes:
                    self.held.pop(outcome.claim.pk, None)
                self.changed.notify_all()
            if wake:
                queue.waker().wake(wake)
        connection.close()

    def _record(self, outcomes):
        """``store.record(outcomes)``, tried twice; if both fail, none is recorded and
        their leases, no longer renewed, run out: they run again elsewhere."""
        for last in (False, True):
            try:
                return store.record(outcomes)
            except Exception:
                connection.close()
                if last:
                    logger.exception("Could not record %d attempts", len(outcomes))
        return [], []

    # The keeper --------------------------------------------------------------------

    def _keep_loop(self):
        while not self.closed.wait(TICK):
            try:
                self.keep()
            except Exception:
                logger.exception("The handler pool's keeper failed; trying again")
                connection.close()
        connection.close()

    def keep(self):
        """Time out overdue attempts, renew the leases held, retire if mostly abandoned."""
        now = time.monotonic()
        with self.lock:
            overdue = [item for item in self.held.values() if item.overdue(now)]
            for item in overdue:
                item.settled = item.abandoned = True
                self.abandoned.append(item.thread)
            held = list(self.held.values())
        for item in overdue:
            self._abandon(item)
        if held and now - self.renewed_at >= min(item.lease for item in held) / 3:
            store.renew([item.claim for item in held])
            self.renewed_at = now
        elif not held:
            self.renewed_at = now
        self._retire_if_mostly_abandoned()

    def _abandon(self, item):
        claim = item.claim
        logger.error(
            "%s (delivery %s) timed out after %g s; its thread is abandoned",
            claim.step_name,
            claim.pk,
            item.timeout,
        )
        self.outcomes.put(runner.timed_out(claim, item.timeout))
        self.slots.release()
        self._start(self._serve, f"step-after-{item.thread.name}")

    def _retire_if_mostly_abandoned(self):
        self.abandoned = [thread for thread in self.abandoned if thread.is_alive()]
        if not self.retiring and len(self.abandoned) > self.threads // 2:
            self.retiring = True
            logger.error(
                "%d of %d handler threads are stuck in handlers that timed out; this "
                "worker hands back its other work and makes way for a new one",
                len(self.abandoned),
                self.threads,
            )
            self.retire()

    # Stopping ------------------------------------------------------------------

    def drain(self, grace):
        """Wait up to ``grace`` seconds for running handlers, then hand back the rest
        (claimed here and not finished); returns how many were handed back."""
        deadline = time.monotonic() + grace
        with self.claiming:
            self.stopping = True
        with self.lock:
            while self._running() and time.monotonic() < deadline:
                self.changed.wait(deadline - time.monotonic())
            left = self._running()
        self._give_up(left)
        self._hand_back(left)
        with self.lock:  # what finished in time is recorded before the process ends
            deadline = time.monotonic() + RECORD_WAIT
            while self.held and time.monotonic() < deadline:
                self.changed.wait(deadline - time.monotonic())
        return len(left)

    def _running(self):
        return [item for item in self.held.values() if not item.settled]

    def _give_up(self, items):
        """Settle ``items`` without an outcome (they are handed back): their slots are
        free, and an outcome that comes later is dropped."""
        with self.lock:
            items = [item for item in items if not item.settled]
            for item in items:
                item.settled = True
        for _ in items:
            self.slots.release()

    def _hand_back(self, items):
        if not items:
            return
        try:
            close_old_connections()
            handed = store.release([item.claim for item in items], HANDED_BACK)
            if handed:
                names = ", ".join(f"{i.claim.pk} ({i.claim.step_name})" for i in items)
                logger.warning("Handed back deliveries %s: their worker stopped", names)
        except Exception:
            logger.exception("Could not hand back deliveries %s", [i.claim.pk for i in items])
        with self.lock:
            for item in items:
                self.held.pop(item.claim.pk, None)
            self.changed.notify_all()


_pool = None
_pool_lock = threading.Lock()


def handler_pool():
    """This process's pool, made on first use (after django-q2 forked the worker)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = HandlerPool(workflow_settings.THREADS)
            _pool.pid = os.getpid()
            # Runs as the worker process exits, before Python waits for threads.
            mp_util.Finalize(
                _pool, _pool.drain, args=(workflow_settings.SHUTDOWN_GRACE,), exitpriority=10
            )
        return _pool


_in_worker = {}


def worker_started(**kwargs):
    """django-q2's ``post_spawn`` receiver, in each new worker process: SIGTERM exits
    through Python (not at once), so the pool's drain runs and hands back what it holds.
    django-q2 itself stops workers with a STOP job; SIGTERM comes from the supervisor,
    or from the worker itself when it retires."""
    _in_worker["pid"] = os.getpid()
    signal.signal(signal.SIGTERM, _exit)
    processes.announce_birth()  # should it die before the supervisor looks


def _exit(signum, frame):
    raise SystemExit(0)


def retire_this_worker():
    """Leave: the supervisor is told it is on purpose; SIGTERM to itself makes the main
    thread exit through Python (releasing django-q2's queue locks on the way out), the
    drain hands back this process's work, and django-q2 starts a new worker. Outside a
    django-q2 worker process (its sync mode), nothing: that process is not the pool's."""
    if _in_worker.get("pid") != os.getpid():
        logger.error("Not a django-q2 worker process: it does not retire")
        return
    processes.announce_retirement()
    os.kill(os.getpid(), signal.SIGTERM)
