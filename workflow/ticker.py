"""The ticker: cron slots and the sweeper, once per cluster, every ``TICK_INTERVAL``.

django-q2's scheduler ticks about every 30 s and knows nothing of due times, so the
framework keeps its own clock:

* **cron** — each cron step's current slot becomes one delivery; a unique constraint
  on (step, slot) makes that once per slot however many clusters tick.
* **sweep** — deliveries that are due but that no job carries (retries after their
  backoff, delayed emits, jobs lost with a crashed process, runs whose visibility
  timeout passed) get a wake-up job.
"""

import logging
import threading
from datetime import timedelta

from croniter import croniter
from django.db import IntegrityError, close_old_connections, reset_queries, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from . import bus
from .conf import workflow_settings
from .deliveries import claimable
from .models import Delivery, Trace, new_trace_id
from .registry import registry

logger = logging.getLogger("workflow")
SWEEP_BATCH = 500


def cron_slot(expression, now):
    """The latest time at or before ``now`` that ``expression`` fires."""
    itr = croniter(expression, now + timedelta(microseconds=1))
    return itr.get_prev(type(now))


def fire_cron(step, slot):
    """Create the delivery for ``step``'s ``slot``; False if a cluster already did."""
    now = timezone.now()
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                step_name=step.name,
                trace_id=new_trace_id(),
                cron_slot=slot,
                due_at=slot,
                created_at=now,
            )
            Trace.objects.create(trace_id=delivery.trace_id, entry_step=step.name, started_at=slot)
            transaction.on_commit(lambda: bus.wake([delivery.pk]), robust=True)
    except IntegrityError:
        return False
    return True


# A fifo delivery waiting behind an earlier one of its group is not swept: the earlier
# one wakes it when done.
ahead = Delivery.objects.filter(
    step_name=OuterRef("step_name"),
    message_group=OuterRef("message_group"),
    pk__lt=OuterRef("pk"),
    status__in=[Delivery.Status.PENDING, Delivery.Status.RUNNING],
)


def sweep(now=None):
    """Send wake-ups for due deliveries no job carries; returns how many."""
    now = now or timezone.now()
    unwoken = Q(enqueued_at__isnull=True)
    if not bus.jobs_waiting():
        # A job sent long ago is presumed lost only when none waits in the broker: under
        # a backlog, jobs wait longer than REENQUEUE_AFTER, and sending them all again
        # would only lengthen the queue.
        stale = now - timedelta(seconds=workflow_settings.REENQUEUE_AFTER)
        unwoken |= Q(enqueued_at__lt=stale)
    due = Delivery.objects.filter(claimable(now) & unwoken).filter(
        Q(message_group__isnull=True) | ~Exists(ahead)
    )
    if not due.exists():
        return 0
    with transaction.atomic():
        ids = list(
            due.select_for_update(skip_locked=True)
            .order_by("due_at")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        Delivery.objects.filter(pk__in=ids).update(enqueued_at=now)
    return len(bus.enqueue(ids))


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
        self.thread = threading.Thread(target=self.run, name="workflow-ticker", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=5)
