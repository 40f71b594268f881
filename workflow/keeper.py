"""The keeper: the thread of a worker's handler pool that supervises its attempts.

Every ``TICK`` it looks at what the pool holds (claimed, not yet recorded):

* **leases**: every third of the shortest lease, it renews the leases of everything
  held in one UPDATE, so a healthy handler runs once however long it takes; a worker
  that stops renewing (killed, frozen) loses its deliveries to another after its lease;
* **timeouts**: an attempt past its handler timeout is recorded as failed ("timed out
  after N s") and retried by its queue policy. An ``async def`` handler has been
  cancelled by then; a sync one cannot be, so its thread is abandoned (its outcome, if
  it ever comes, is dropped) and a new thread takes its slot;
* **retiring**: once most of the pool's threads are stuck in handlers that timed out,
  the worker retires (``processes.retire``): at its next job it hands back its other
  work and exits, and django-q2 starts a fresh one.
"""

import logging
import time

from django.db import connection

from . import runner
from .policy import QueuePolicy
from .registry import registry
from .store import store

logger = logging.getLogger("workflow")
TICK = 0.25  # seconds


class Held:
    """A delivery a pool claimed and has not recorded yet."""

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


class Keeper:
    def __init__(self, pool):
        self.pool = pool
        self.renewed_at = time.monotonic()
        self.abandoned = []  # threads still running a handler that timed out
        self.retiring = False

    def run(self):
        while not self.pool.closed.wait(TICK):
            try:
                self.keep()
            except Exception:
                logger.exception("The handler pool's keeper failed; trying again")
                connection.close()
        connection.close()

    def keep(self):
        """Time out overdue attempts, renew the leases held, retire if mostly abandoned."""
        pool, now = self.pool, time.monotonic()
        with pool.lock:
            overdue = [item for item in pool.held.values() if item.overdue(now)]
            for item in overdue:
                item.settled = item.abandoned = True
                self.abandoned.append(item.thread)
            held = list(pool.held.values())
        for item in overdue:
            self.abandon(item)
        if held and now - self.renewed_at >= min(item.lease for item in held) / 3:
            store.renew([item.claim for item in held])
            self.renewed_at = now
        elif not held:
            self.renewed_at = now
        self.retire_if_mostly_abandoned()

    def abandon(self, item):
        claim = item.claim
        logger.error(
            "%s (delivery %s) timed out after %g s; its thread is abandoned",
            claim.step_name,
            claim.pk,
            item.timeout,
        )
        self.pool.outcomes.put(runner.timed_out(claim, item.timeout))
        self.pool.slots.release()
        self.pool.serve_in_a_new_thread(f"step-after-{item.thread.name}")

    def retire_if_mostly_abandoned(self):
        self.abandoned = [thread for thread in self.abandoned if thread.is_alive()]
        if not self.retiring and len(self.abandoned) > self.pool.threads // 2:
            self.retiring = True
            logger.error(
                "%d of %d handler threads are stuck in handlers that timed out; this "
                "worker hands back its other work and makes way for a new one",
                len(self.abandoned),
                self.pool.threads,
            )
            self.pool.retire()
