"""Handler threads inside each django-q2 worker process.

django-q2 runs one job at a time per worker process, one process per core. Step
handlers mostly wait (on mail servers, APIs, the database), so a job here only wakes
the worker: ``wake(*delivery_ids)`` takes one of ``THREADS`` handler slots for each
delivery and returns. When every slot is busy it waits up to ``SLOT_WAIT`` seconds,
then hands the delivery back to the sweeper instead of hoarding it, so an idle worker
elsewhere can take it.

Inside the process a delivery passes three hands: the *claimer* thread claims every
delivery woken since its last claim at once, a *handler* thread runs the attempt, and
the *completer* thread records every attempt finished since its last commit in one
transaction (``batch``). Idle, each batch is one delivery; busy, a transaction carries
many, and only two threads per process write to the delivery table.

When the worker process exits (the cluster is stopping), running handlers get
``SHUTDOWN_GRACE`` seconds to finish; the deliveries of those still running, or
claimed and not yet started, are handed back, due at once, for the next worker.
"""

import logging
import os
import queue
import signal
import socket
import threading
import time
from multiprocessing import util as mp_util

from django.db import close_old_connections, connection, reset_queries

from . import batch, deliveries
from .conf import workflow_settings
from .runner import run_claimed

logger = logging.getLogger("workflow")
HANDED_BACK = "Worker stopped; handed back"


def take_all(first, source):
    """``first`` and whatever else ``source`` holds right now."""
    items = [first]
    while True:
        try:
            items.append(source.get_nowait())
        except queue.Empty:
            return items


class Finished:
    """An attempt waiting for the completer: set() tells its handler thread the outcome."""

    def __init__(self, delivery, run, ctx):
        self.delivery, self.run = delivery, run
        self.write = ctx.commit if ctx.holds_writes() else None
        self.error = None
        self.done = threading.Event()


class HandlerPool:
    def __init__(self, threads):
        self.threads = threads
        self.slots = threading.BoundedSemaphore(threads)
        self.woken = queue.SimpleQueue()  # delivery ids, each holding a slot
        self.claimed = queue.SimpleQueue()  # (delivery, run) waiting for a handler thread
        self.finished = queue.SimpleQueue()  # Finished attempts waiting for the completer
        self.held = {}  # delivery id -> (delivery, run): claimed here, not yet recorded
        self.stopping = False
        self.lock = threading.Lock()
        self.claiming = threading.Lock()
        self.idle = threading.Condition(self.lock)
        # host:pid/thread, as runs name their worker; the claimer claims for the pool.
        self.worker = f"{socket.gethostname()}:{os.getpid()}/pool"
        # Daemon threads: a handler still running when the process exits (after
        # drain() handed its delivery back) must not hold the exit up.
        self._start(self._claim_loop, "step-claimer")
        self._start(self._complete_loop, "step-completer")
        for number in range(threads):
            self._start(self._serve, f"step-{number}")

    @staticmethod
    def _start(target, name):
        threading.Thread(target=target, name=name, daemon=True).start()

    def submit(self, delivery_id, wait):
        """Run ``delivery_id`` on a free thread; False if none freed up within ``wait``."""
        if not self.slots.acquire(timeout=wait):
            return False
        self.woken.put(delivery_id)
        return True

    # The claimer ---------------------------------------------------------------

    def _claim_loop(self):
        while True:
            ids = take_all(self.woken.get(), self.woken)
            reset_queries()  # with DEBUG on, each connection keeps its queries (see _serve)
            with self.claiming:  # drain() waits for a claim in flight to be held
                claimed = [] if self.stopping else self._claim(ids)
                with self.lock:
                    for delivery, run in claimed:
                        self.held[delivery.pk] = (delivery, run)
            if self.stopping and not claimed:
                self._hand_back_wakes(ids)
            for pair in claimed:
                self.claimed.put(pair)
            for _ in range(len(ids) - len(claimed)):
                self.slots.release()  # not claimable (done, not due, taken elsewhere)

    def _claim(self, ids):
        try:
            return batch.claim_many(ids, self.worker)
        except Exception:
            logger.exception("Could not claim deliveries %s; the sweeper will wake them", ids)
            connection.close()
            self._hand_back_wakes(ids)
            return []

    def _hand_back_wakes(self, ids):
        for delivery_id in ids:
            try:
                deliveries.hand_back_wake(delivery_id)
            except Exception:
                logger.exception("Could not hand back delivery %s", delivery_id)
                connection.close()

    # Handler threads -----------------------------------------------------------

    def _serve(self):
        while True:
            delivery, run = self.claimed.get()
            try:
                close_old_connections()
                if self.stopping:
                    self._hand_back(delivery, run)
                else:
                    run_claimed(delivery, run, complete=self._complete)
            except Exception:
                logger.exception("Delivery %s could not be run", delivery.pk)
            finally:
                close_old_connections()
                # With DEBUG on, Django keeps each connection's queries (up to 9,000)
                # until a request starts; a worker's threads serve no requests.
                reset_queries()
                with self.lock:
                    self.held.pop(delivery.pk, None)
                    self.idle.notify_all()
                self.slots.release()

    def _complete(self, delivery, run, ctx):
        """Hand a successful attempt to the completer and wait for it to be recorded."""
        finished = Finished(delivery, run, ctx)
        if getattr(connection, "pool", None) and not connection.in_atomic_block:
            # Back to the pool while waiting: the completer needs a connection, and
            # handler threads waiting here must not hold every one (PostgreSQL pool).
            connection.close()
        self.finished.put(finished)
        finished.done.wait()
        if finished.error is not None:
            raise finished.error

    # The completer -------------------------------------------------------------

    def _complete_loop(self):
        while True:
            finished = take_all(self.finished.get(), self.finished)
            reset_queries()
            try:
                errors = batch.complete_many([(f.delivery, f.run, f.write) for f in finished])
            except Exception as exc:  # the commit failed: none was recorded
                logger.warning("Could not record %d attempts: %s", len(finished), exc)
                connection.close()
                errors = [exc] * len(finished)
            for item, error in zip(finished, errors, strict=True):
                item.error = error
                item.done.set()

    # Stopping ------------------------------------------------------------------

    def drain(self, grace):
        """Wait up to ``grace`` seconds for running handlers, then hand back the rest
        (claimed here and not recorded); returns how many were handed back."""
        deadline = time.monotonic() + grace
        with self.claiming:
            self.stopping = True
        with self.lock:
            while self.held and time.monotonic() < deadline:
                self.idle.wait(deadline - time.monotonic())
            left = list(self.held.values())
        for delivery, run in left:
            self._hand_back(delivery, run)
        return len(left)

    def _hand_back(self, delivery, run):
        try:
            close_old_connections()
            if deliveries.release(delivery, run, HANDED_BACK):
                logger.warning(
                    "Handed back delivery %s (%s): its worker stopped",
                    delivery.pk,
                    delivery.step_name,
                )
        except Exception:
            logger.exception("Could not hand back delivery %s", delivery.pk)


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


def stop_gracefully_on_sigterm(**kwargs):
    """django-q2's ``post_spawn`` receiver, in each new worker process: SIGTERM exits
    through Python (not at once), so the pool's drain runs and hands back what it holds.
    django-q2 itself stops workers with a STOP job; SIGTERM comes from the supervisor."""
    signal.signal(signal.SIGTERM, _exit)


def _exit(signum, frame):
    raise SystemExit(0)


def wake(*delivery_ids):
    """The django-q2 job: run deliveries on handler threads of this worker. A job
    carries those of the emits that committed together (see ``bus.Waker``); those for
    which no handler slot frees up within ``SLOT_WAIT`` are handed back to the sweeper,
    for an idle worker elsewhere."""
    pool = handler_pool()
    for n, delivery_id in enumerate(delivery_ids):
        if not pool.submit(delivery_id, wait=workflow_settings.SLOT_WAIT):
            for waiting in delivery_ids[n:]:
                deliveries.hand_back_wake(waiting)
            break
    return list(delivery_ids)
