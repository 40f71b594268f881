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

The *keeper* thread supervises them (``keeper``): it renews the leases of everything
the process holds while the handlers run, times out attempts past their handler
timeout (a sync handler's thread is abandoned, and another takes its slot), and
retires the process once most of its threads are stuck.

When the worker process exits (the cluster is stopping), running handlers get
``SHUTDOWN_GRACE`` seconds to finish; the deliveries of those still running, or
claimed and not yet started, are handed back, due at once, for the next worker.
"""

import logging
import os
import queue as queues
import threading
import time
from multiprocessing import util as mp_util

from django.db import close_old_connections, connection, reset_queries

from . import processes, runner
from .conf import workflow_settings
from .connections import tidy
from .keeper import Held, Keeper
from .logs import LogWriter
from .store import store

logger = logging.getLogger("workflow")
HANDED_BACK = "Worker stopped; handed back"
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


class HandlerPool:
    def __init__(self, threads, worker=None, retire=None, wake=None):
        self.threads = threads
        self.worker = worker or processes.worker_id()
        self.retire = retire or processes.retire
        # Sends wake-ups (queue.wake_soon); without it, the sweeper wakes what is due.
        self.wake = wake or (lambda delivery_ids: None)
        self.slots = threading.BoundedSemaphore(threads)
        self.woken = queues.SimpleQueue()  # delivery ids, each holding a slot
        self.claimed = queues.SimpleQueue()  # Held, waiting for a handler thread
        self.outcomes = queues.SimpleQueue()  # Outcome, waiting for the recorder
        self.held = {}  # delivery id -> Held: claimed here, not yet recorded
        self.stopping = False
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.claiming = threading.Lock()
        self.closed = threading.Event()
        self.keeper = Keeper(self)
        self.log_writer = LogWriter()  # stores the handlers' log lines, many per INSERT
        self.started = []
        # Daemon threads: a handler still running when the process exits (after
        # drain() handed its delivery back) must not hold the exit up.
        self._start(self._claim_loop, "step-claimer")
        self._start(self._record_loop, "step-recorder")
        self._start(self.keeper.run, "step-keeper")
        for number in range(threads):
            self.serve_in_a_new_thread(f"step-{number}")

    def _start(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        self.started.append(thread)
        thread.start()

    def serve_in_a_new_thread(self, name):
        self._start(self._serve, name)

    @property
    def abandoned(self):
        """Threads still running a handler that timed out."""
        return self.keeper.abandoned

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
            if thread not in self.keeper.abandoned:
                thread.join(max(0, deadline - time.monotonic()))
        self.log_writer.close(max(0, deadline - time.monotonic()))

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
        tidy()
        try:
            outcome = runner.attempt(item.claim, item.timeout, self.log_writer)
        except Exception:  # the runner's own failure (its handler's are outcomes)
            logger.exception("Delivery %s could not be run", item.claim.pk)
            outcome = None
        finally:
            tidy()
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
                self.wake(wake)
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
        self.log_writer.close(RECORD_WAIT)  # and the log lines handed to it
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


def handler_pool(wake=None):
    """This process's pool, made on first use (after django-q2 forked the worker), with
    ``wake`` to send wake-ups (the next delivery of a fifo group, once one is done)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = HandlerPool(workflow_settings.THREADS, wake=wake)
            _pool.pid = os.getpid()
            # Runs as the worker process exits, before Python waits for threads.
            mp_util.Finalize(
                _pool, _pool.drain, args=(workflow_settings.SHUTDOWN_GRACE,), exitpriority=10
            )
        return _pool
