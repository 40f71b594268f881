"""The delivery store over Django's ORM: every database the ORM supports.

New deliveries (an emit's, a cron slot's, a replay), cancellation, the wake-up marks
and the sweeper's pick live here; claims and leases in ``claims``, outcomes in
``outcomes``. The store never wakes a worker itself: what it records that should run
now, it returns, and its caller sends the wake-ups once the transaction commits.
"""

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from ..errors import NotReplayable
from ..logs import python_logger
from ..models import Delivery, Event, LogEntry, Run, Trace
from . import gates
from .claims import ClaimsMixin, claimable, ended
from .outcomes import OutcomesMixin
from .records import Cancelled

Status = Delivery.Status
LIVE = (Status.PENDING, Status.RUNNING)
SWEEP_BATCH = 500
CANCELLED = "Cancelled"


class DeliveryStore(ClaimsMixin, OutcomesMixin):
    """The one owner of delivery state. ``workflow.store.store`` is the one for the
    database in use (this class, or a subclass for PostgreSQL)."""

    vendor = "orm"

    # New deliveries -----------------------------------------------------------

    def record_emit(self, event, trace, deliveries, idempotency_key=None):
        """Insert ``event`` (with ``trace``, None when it joins a trace already recorded)
        and its ``deliveries``; returns ``(event, True)``. With an ``idempotency_key``
        already used for the topic: ``(the first event, False)``, and nothing written."""
        with transaction.atomic():
            if idempotency_key is not None:
                first = self._first_with_key(event, idempotency_key)
                if first is not None:
                    return first, False
            else:
                event.save(force_insert=True)
            if trace is not None:
                trace.save(force_insert=True)
            for delivery in deliveries:
                delivery.event = event
            Delivery.objects.bulk_create(deliveries)
        return event, True

    @staticmethod
    def _first_with_key(event, key):
        """None once ``event`` is saved with ``key``; the first event of its topic with
        that key if there is one (a race lost in a savepoint leaves the caller's intact)."""
        first = Event.objects.filter(topic=event.topic, idempotency_key=key).first()
        if first is not None:
            return first
        event.idempotency_key = key
        try:
            with transaction.atomic():
                event.save(force_insert=True)
        except IntegrityError:
            return Event.objects.get(topic=event.topic, idempotency_key=key)
        return None

    def record_cron(self, step_name, slot, trace_id):
        """The delivery of a cron step's slot, with its trace; None if a cluster already
        made it (one per step and slot)."""
        try:
            with transaction.atomic():
                delivery = Delivery.objects.create(
                    step_name=step_name,
                    trace_id=trace_id,
                    cron_slot=slot,
                    due_at=slot,
                    created_at=timezone.now(),
                )
                Trace.objects.create(trace_id=trace_id, entry_step=step_name, started_at=slot)
        except IntegrityError:
            return None
        return delivery

    def record_replay(self, delivery, event=None):
        """A new delivery re-running ``delivery`` (same event, or ``event``, in the same
        trace and group), linked to it by ``replay_of``. Raises ``NotReplayable`` if
        ``delivery`` has not finished, or already has a replay waiting, running or
        succeeded."""
        if delivery.status not in (Status.SUCCEEDED, Status.DEAD):
            raise NotReplayable(
                f"delivery {delivery.pk} ({delivery.step_name}) is {delivery.status}; "
                "only succeeded or dead deliveries are replayed"
            )
        now = timezone.now()
        try:
            with transaction.atomic():
                return Delivery.objects.create(
                    event_id=event.pk if event is not None else delivery.event_id,
                    step_name=delivery.step_name,
                    trace_id=delivery.trace_id,
                    message_group=delivery.message_group,
                    flow_key=delivery.flow_key,
                    priority=delivery.priority,
                    replay_of=delivery,
                    due_at=now,
                    created_at=now,
                )
        except IntegrityError:  # workflow_delivery_one_live_replay
            replay = delivery.replays.filter(status__in=[*LIVE, Status.SUCCEEDED]).first()
            shown = f"delivery {replay.pk} ({replay.status})" if replay else "another replay"
            raise NotReplayable(
                f"delivery {delivery.pk} ({delivery.step_name}) was already replayed as "
                f"{shown}; replay that one once it has finished, if it must run again"
            ) from None

    # Cancel ----------------------------------------------------------------------

    def cancel(self, trace_id):
        """Stop a trace: its pending and running deliveries become cancelled. A running
        attempt goes on until its handler returns, but its outcome, held writes and
        emits are discarded, and it is not retried."""
        now = timezone.now()
        with transaction.atomic():
            live = Delivery.objects.filter(trace_id=trace_id, status__in=LIVE)
            rows = list(live.select_for_update().values_list("pk", "status"))
            if not rows:
                return Cancelled()
            ids = [pk for pk, _ in rows]
            Delivery.objects.filter(pk__in=ids, status__in=LIVE).update(
                **ended(Status.CANCELLED, now, CANCELLED)
            )
            Run.objects.filter(delivery_id__in=ids, status=Run.Status.RUNNING).update(
                status=Run.Status.INTERRUPTED, finished_at=now, error=CANCELLED
            )
        running = sum(status == Status.RUNNING for _, status in rows)
        return Cancelled(pending=len(rows) - running, running=running)

    # Wake-up marks ------------------------------------------------------------------
    # A pending delivery with ``enqueued_at`` set is carried by a wake-up job; the
    # sweeper sends jobs for due ones without (or with a mark sent long ago).

    def mark_enqueued(self, delivery_ids):
        """Mark those of ``delivery_ids`` still waiting for their first run as carried
        by a job (a claimed one is not: a claim clears the mark)."""
        Delivery.objects.filter(
            pk__in=delivery_ids,
            status=Status.PENDING,
            attempts=0,
            enqueued_at__isnull=True,
        ).update(enqueued_at=timezone.now())

    def unmark(self, delivery_ids):
        """Jobs that will not run these (unsent, or no worker had room): the sweeper's."""
        Delivery.objects.filter(pk__in=delivery_ids, status=Status.PENDING).update(enqueued_at=None)

    def unmark_all(self):
        """Every pending delivery marked as carried: their jobs died with a cluster."""
        return Delivery.objects.filter(status=Status.PENDING, enqueued_at__isnull=False).update(
            enqueued_at=None
        )

    def take_due(self, now, stale_before=None):
        """The sweeper's pick: up to ``SWEEP_BATCH`` claimable deliveries that no job
        carries (or whose job was sent before ``stale_before``), marked as carried, the
        highest priority first; a fifo delivery behind an earlier live one of its group
        waits for that one, and one of a step at its concurrency limit for a place."""
        unwoken = Q(enqueued_at__isnull=True)
        if stale_before is not None:
            unwoken |= Q(enqueued_at__lt=stale_before)
        ahead = (  # as ``waits_its_turn``: an earlier live one, or any other running
            Delivery.objects.filter(
                step_name=OuterRef("step_name"),
                message_group=OuterRef("message_group"),
                status__in=LIVE,
            )
            .filter(Q(pk__lt=OuterRef("pk")) | Q(status=Status.RUNNING))
            .exclude(pk=OuterRef("pk"))
        )
        due = Delivery.objects.filter(claimable(now) & unwoken).filter(
            Q(message_group__isnull=True) | ~Exists(ahead)
        )
        if (full := gates.blocked(now)) is not None:  # concurrency limits with no place free
            due = due.exclude(full)
        if not due.exists():
            return []
        with transaction.atomic():
            ids = list(
                due.select_for_update(skip_locked=True)
                .order_by("-priority", "due_at")
                .values_list("pk", flat=True)[:SWEEP_BATCH]
            )
            Delivery.objects.filter(pk__in=ids).update(enqueued_at=now)
        return ids

    def make_due(self, now):
        """Every pending delivery due later is due at ``now`` (``FlowTester``'s fast
        forward through delays and backoff)."""
        Delivery.objects.filter(status=Status.PENDING, due_at__gt=now).update(due_at=now)

    # API calls ------------------------------------------------------------------------

    def record_api_run(self, run, trace, lines):
        """Store an API call's run, its trace and its log lines (each with the run);
        returns whether the lines were stored (a failure to store them is logged and
        loses the run nothing)."""
        with transaction.atomic():
            run.save()
            trace.save()
            if not lines:
                return True
            try:  # in the same transaction, in a savepoint of their own
                with transaction.atomic():
                    LogEntry.objects.bulk_create(lines)
            except Exception:
                python_logger.exception("Could not store %d step log lines", len(lines))
                for line in lines:  # not stored after all
                    line.pk = None
                return False
        return True
