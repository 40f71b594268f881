"""The ticker: cron slots and the sweeper, once per cluster, every ``TICK_INTERVAL``.

django-q2's scheduler ticks about every 30 s and knows nothing of due times, so the
framework keeps its own clock:

* **cron** — each cron step's current slot becomes one delivery; a unique constraint
  on (step, slot) makes that once per slot however many clusters tick.
* **sweep** — deliveries that are due but that no job carries (retries after their
  backoff, delayed emits, jobs lost with a crashed process, runs whose lease ran out)
  get a wake-up job.
"""

import logging
import threading
from datetime import timedelta

from croniter import croniter
from django.db import close_old_connections, reset_queries, transaction
from django.utils import timezone

from . import joins, queue
from .conf import workflow_settings
from .models import new_trace_id
from .registry import registry
from .store import store

logger = logging.getLogger("workflow")


def cron_slot(expression, now):
    """The latest time at or before ``now`` that ``expression`` fires."""
    itr = croniter(expression, now + timedelta(microseconds=1))
    return itr.get_prev(type(now))


def fire_cron(step, slot):
    """Create the delivery for ``step``'s ``slot``, woken once it commits; False if a
    cluster already did."""
    delivery = store.record_cron(step.name, slot, new_trace_id())
    if delivery is None:
        return False
    transaction.on_commit(lambda: queue.wake([delivery.pk]), robust=True)
    return True


def sweep(now=None):
    """Send wake-ups for due deliveries no job carries; returns how many."""
    now = now or timezone.now()
    stale = None
    if not queue.jobs_waiting():
        # A job sent long ago is presumed lost only when none waits in the broker: under
        # a backlog, jobs wait longer than REENQUEUE_AFTER, and sending them all again
        # would only lengthen the queue.
        stale = now - timedelta(seconds=workflow_settings.REENQUEUE_AFTER)
    ids = store.take_due(now, stale)
    return len(queue.enqueue(ids)) if ids else 0


class Ticker:
    def __init__(self, interval=None):
        self.interval = interval or workflow_settings.TICK_INTERVAL
        self.started_at = timezone.now()
        self.last_slots = {}
        self.stopping = threading.Event()
        self.thread = None

    def tick(self, now=None):
        now = now or timezone.now()
        for step in registry.of_type("cron"):
            slot = cron_slot(step.config.cron, now)
            if slot > self.started_at and self.last_slots.get(step.name) != slot:
                self.last_slots[step.name] = slot
                fire_cron(step, slot)
        sweep(now)
        if any(getattr(step.config, "join", None) for step in registry.of_type("event")):
            joins.expire(registry, now)

    def run(self):
        while not self.stopping.wait(self.interval):
            try:
                self.tick()
            except Exception:
                logger.exception("Ticker failed; trying again next tick")
            finally:
                close_old_connections()
                reset_queries()  # DEBUG on: the queries a connection keeps (no requests here)

    def start(self):
        """Start ticking (again, after ``stop()``: a slot that came meanwhile still fires)."""
        self.stopping.clear()
        self.thread = threading.Thread(target=self.run, name="workflow-ticker", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=5)
            self.thread = None
