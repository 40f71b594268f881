"""Handler threads inside each django-q2 worker process.

django-q2 runs one job at a time per worker process, one process per core. Step
handlers mostly wait (on mail servers, APIs, the database), so a job here only wakes
the worker: ``wake(delivery_id)`` hands the delivery to one of ``THREADS`` handler
threads in this process and returns. When every thread is busy it waits up to
``SLOT_WAIT`` seconds, then hands the delivery back to the sweeper instead of
hoarding it, so an idle worker elsewhere can take it.

When the worker process exits (the cluster is stopping), running handlers get
``SHUTDOWN_GRACE`` seconds to finish; the deliveries of those still running are
handed back, due at once, for the next worker to run.
"""

import logging
import os
import queue
import signal
import socket
import threading
import time
from multiprocessing import util as mp_util

from django.db import close_old_connections

from . import deliveries
from .conf import workflow_settings
from .runner import run_delivery

logger = logging.getLogger("workflow")


class HandlerPool:
    def __init__(self, threads):
        self.threads = threads
        self.slots = threading.BoundedSemaphore(threads)
        self.queue = queue.SimpleQueue()
        self.running = {}  # thread id -> (delivery, run)
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        # Daemon threads: a handler still running when the process exits (after
        # drain() handed its delivery back) must not hold the exit up.
        for number in range(threads):
            threading.Thread(target=self._serve, name=f"step-{number}", daemon=True).start()

    def _serve(self):
        while True:
            self._run(self.queue.get())

    def submit(self, delivery_id, wait):
        """Run ``delivery_id`` on a free thread; False if none freed up within ``wait``."""
        if not self.slots.acquire(timeout=wait):
            return False
        self.queue.put(delivery_id)
        return True

    def _run(self, delivery_id):
        me = threading.get_ident()
        try:
            run_delivery(
                delivery_id,
                f"{self.worker}/{threading.current_thread().name}",
                on_claim=lambda d, r: self._hold(me, d, r),
            )
        except Exception:
            logger.exception("Delivery %s could not be run", delivery_id)
        finally:
            with self.lock:
                self.running.pop(me, None)
                self.idle.notify_all()
            self.slots.release()

    def _hold(self, thread_id, delivery, run):
        with self.lock:
            self.running[thread_id] = (delivery, run)

    def drain(self, grace):
        """Wait up to ``grace`` seconds for running handlers, then hand back the rest."""
        deadline = time.monotonic() + grace
        with self.lock:
            while self.running and time.monotonic() < deadline:
                self.idle.wait(deadline - time.monotonic())
            left = list(self.running.values())
        for delivery, run in left:
            try:
                close_old_connections()
                if deliveries.release(delivery, run, "Worker stopped; handed back"):
                    logger.warning(
                        "Handed back delivery %s (%s): its worker stopped",
                        delivery.pk,
                        delivery.step_name,
                    )
            except Exception:
                logger.exception("Could not hand back delivery %s", delivery.pk)
        return len(left)


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


def wake(delivery_id):
    """The django-q2 job: run one delivery on a handler thread of this worker."""
    if not handler_pool().submit(delivery_id, wait=workflow_settings.SLOT_WAIT):
        deliveries.hand_back_wake(delivery_id)
    return delivery_id
