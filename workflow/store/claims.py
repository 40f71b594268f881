"""Claims and leases: taking deliveries for attempts, keeping them, giving them back.

A claim is a compare-and-set on the delivery's row, so a job handed out twice, a
worker presumed dead that comes back, or two clusters racing on one delivery can never
both hold it. The claim starts a lease (``claimed_until``, ``claimed_by``) that the
attempt's worker renews while the handler runs; a lease that runs out (the worker died
or froze) makes the delivery claimable again, and that attempt counts as failed.
"""

import uuid
from datetime import timedelta

from django.db import transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from ..models import Delivery, PausedQueue, Run
from ..policy import QueuePolicy
from ..registry import registry
from . import gates
from .records import Claim

Status = Delivery.Status
PRESUMED_DEAD = "Presumed dead: its worker stopped renewing the lease"


def claimable(now):
    """Deliveries a worker may take now: due pending ones, and those whose lease ran
    out, of steps whose queue is not paused."""
    due = Q(status=Status.PENDING, due_at__lte=now) | Q(
        status=Status.RUNNING, claimed_until__lt=now
    )
    return due & not_paused()


def not_paused():
    """Deliveries of steps whose queue is not paused (``workflow.pauses``): a subquery
    of the statement that takes them, so a pause holds from its commit on."""
    return ~Q(step_name__in=PausedQueue.objects.values("step_name"))


def owned(claims):
    """The rows of ``claims`` that each attempt still holds (matched by id and token)."""
    by_token = {}  # the deliveries of one claim share its token
    for claim in claims:
        by_token.setdefault(claim.delivery.claim_token, []).append(claim.pk)
    held = Q()
    for token, pks in by_token.items():
        held |= Q(claim_token=token, pk__in=pks)
    return Delivery.objects.filter(held, status=Status.RUNNING)


def ended(status, now, error=""):
    """The columns of a delivery that ends (succeeded, dead, cancelled): finished now,
    its lease and its wake-up mark cleared."""
    return {
        "status": status,
        "finished_at": now,
        "claim_token": None,
        "claimed_until": None,
        "enqueued_at": None,
        "last_error": error,
    }


def leases(now):
    """Each step's ``claimed_until`` if its lease starts ``now``, by step name ("": every
    step on the default lease)."""
    default = QueuePolicy.for_step(None).visibility_timeout
    found = {"": now + timedelta(seconds=default)}
    for step in registry:
        seconds = QueuePolicy.for_step(step).visibility_timeout
        if seconds != default:
            found[step.name] = now + timedelta(seconds=seconds)
    return found


def lease_expression(now):
    """``claimed_until`` for rows whose lease starts now: a CASE over the steps whose
    lease is not the default one."""
    found = leases(now)
    cases = [When(step_name=name, then=Value(at)) for name, at in found.items() if name]
    if not cases:
        return Value(found[""])
    return Case(*cases, default=Value(found[""]), output_field=DateTimeField())


class ClaimsMixin:
    def claim(self, delivery_ids, worker=""):
        """Take each of ``delivery_ids`` that can be taken now, for ``worker``; returns a
        ``Claim`` for each one taken.

        Due pending deliveries outside any fifo group and flow control (nearly all) are
        claimed together, in one transaction; those of a step with flow control, one
        transaction per step (``_claim_guarded``); the others still claimable (fifo
        ones, and those whose lease ran out) one by one, the highest priority first. A
        delivery whose lease ran out on its last allowed attempt is dead instead (a
        handler that kills its worker is not retried for ever).
        """
        now = timezone.now()
        token = uuid.uuid4()  # one per batch: a claim is told apart by (pk, token)
        claimed = self.claim_pending(delivery_ids, token, now, worker)
        taken = {claim.pk for claim in claimed}
        rest = [pk for pk in delivery_ids if pk not in taken]
        if not rest:
            return claimed
        others = Delivery.objects.select_related("event").filter(claimable(now), pk__in=rest)
        guarded, by_step = gates.guarded_steps(), {}
        for delivery in others.order_by("-priority", "pk"):
            if (
                delivery.step_name in guarded
                and delivery.status == Status.PENDING
                and delivery.message_group is None
            ):
                by_step.setdefault(delivery.step_name, []).append(delivery)
            elif (claim := self._claim_one(delivery, worker)) is not None:
                claimed.append(claim)
        for step_name, deliveries in by_step.items():
            claimed += self._claim_guarded(step_name, deliveries, worker)
        return claimed

    def claim_pending(self, delivery_ids, token, now, worker):
        """Claim those of ``delivery_ids`` pending, due, in no fifo group and of no
        guarded step (``gates``): one compare-and-set UPDATE, one read of what it took
        (with the events), one INSERT of their runs."""
        with transaction.atomic():
            candidates = Delivery.objects.filter(
                not_paused(),
                pk__in=delivery_ids,
                status=Status.PENDING,
                due_at__lte=now,
                message_group=None,
            )
            if guarded := gates.guarded_steps():
                candidates = candidates.exclude(step_name__in=list(guarded))
            taken = candidates.update(
                status=Status.RUNNING,
                attempts=F("attempts") + 1,
                claim_token=token,
                claimed_until=lease_expression(now),
                claimed_by=worker,
                enqueued_at=None,
            )
            if not taken:
                return []
            held = list(
                Delivery.objects.select_related("event").filter(
                    pk__in=delivery_ids, claim_token=token
                )
            )
            runs = Run.objects.bulk_create([Run.of_attempt(d, worker, now) for d in held])
        return [Claim(d, run) for d, run in zip(held, runs, strict=True)]

    def _claim_guarded(self, step_name, deliveries, worker):
        """Claim pending ``deliveries`` of one step with flow control, in one transaction
        that waits its turn with the step's other claims (``lock_step``): each is
        admitted by ``gates.hold`` when its turn comes (so it counts those admitted
        before it), or held back; one INSERT of the runs (one each under a rate limit,
        which counts them)."""
        policy = QueuePolicy.for_step(registry.get(step_name))
        token = uuid.uuid4()
        with transaction.atomic():
            self.lock_step(step_name)
            now = timezone.now()  # its turn came: the runs start now, in lock order
            held = {
                "status": Status.RUNNING,
                "claim_token": token,
                "claimed_until": now + timedelta(seconds=policy.visibility_timeout),
                "claimed_by": worker,
                "enqueued_at": None,  # the job that woke it is spent
            }
            # A rate limit counts the runs started: each is inserted as it is admitted.
            counts_runs = gates.flow_of(step_name).rate_limit is not None
            admitted, runs = [], []
            for delivery in deliveries:
                if self._held_back(delivery, now):
                    continue
                if _as_read(delivery).update(**held, attempts=delivery.attempts + 1):
                    for name, value in held.items():
                        setattr(delivery, name, value)
                    delivery.attempts += 1
                    admitted.append(delivery)
                    runs.append(Run.of_attempt(delivery, worker, now))
                    if counts_runs:
                        runs[-1].save()
            if not counts_runs:
                runs = Run.objects.bulk_create(runs)
        return [Claim(d, run) for d, run in zip(admitted, runs, strict=True)]

    def _claim_one(self, delivery, worker):
        """Claim ``delivery`` (a row just read as claimable) on its own, if it still is."""
        now = timezone.now()
        policy = QueuePolicy.for_step(registry.get(delivery.step_name))
        if delivery.status == Status.RUNNING and delivery.attempts > policy.max_retries:
            self._bury(delivery, now)
            return None
        with transaction.atomic():
            if delivery.message_group is not None:
                # The group's claims take turns, and the check is made in the turn.
                self.lock_step(delivery.step_name, delivery.message_group)
                if self.waits_its_turn(delivery):
                    return None
            if delivery.step_name in gates.guarded_steps():
                self.lock_step(delivery.step_name)
                if self._held_back(delivery, timezone.now()):
                    return None
            # Its turn came (the write lock, its group's or its step's): the run starts
            # now, after the end of the one before it, however long the turn took.
            now = timezone.now()
            held = {
                "status": Status.RUNNING,
                "attempts": delivery.attempts + 1,
                "claim_token": uuid.uuid4(),
                "claimed_until": now + timedelta(seconds=policy.visibility_timeout),
                "claimed_by": worker,
                # The job that woke it is spent: if this lease runs out, the sweeper wakes it.
                "enqueued_at": None,
            }
            if not _as_read(delivery).update(**held):
                return None
            _interrupt_presumed_dead(delivery, now)
            for name, value in held.items():
                setattr(delivery, name, value)
            run = Run.of_attempt(delivery, worker, now)
            run.save()
        return Claim(delivery, run)

    def _held_back(self, delivery, now):
        """Whether flow control (``gates.hold``) keeps ``delivery`` from starting now; if
        so it is cancelled (superseded), due again later (the rate window), or left
        for the sweeper and the next freed place. Called in the claim's transaction,
        after ``lock_step``."""
        hold = gates.hold(delivery, now)
        if hold is None:
            return False
        if hold.superseded_by is not None:
            _as_read(delivery).update(**ended(Status.CANCELLED, now, hold.reason))
            _interrupt_presumed_dead(delivery, now)
        elif hold.until is not None:
            _as_read(delivery).update(due_at=hold.until, enqueued_at=None, last_error=hold.reason)
        else:
            _as_read(delivery).update(enqueued_at=None)
        return True

    def lock_step(self, step_name, group=None):
        """Make the claims of ``step_name`` (of its fifo ``group``, if given) take turns
        until this transaction ends. The ORM store needs nothing: SQLite's transactions
        begin IMMEDIATE (one writer at a time); ``PostgresStore`` takes an advisory lock."""

    def _bury(self, delivery, now):
        """A lease that ran out on the last attempt allowed: the delivery is dead."""
        error = f"{PRESUMED_DEAD} on attempt {delivery.attempts}, the last one allowed"
        with transaction.atomic():
            buried = _as_read(delivery).update(**ended(Status.DEAD, now, error))
            if buried:  # the next of its fifo group, if any, is the sweeper's to wake
                _interrupt_presumed_dead(delivery, now)
        return bool(buried)

    @staticmethod
    def waits_its_turn(delivery):
        """A fifo delivery waits while an earlier one of its group is pending or running,
        or any other of its group is running: one at a time, even when a later one was
        committed first (on PostgreSQL, ids are handed out before the commits)."""
        if delivery.message_group is None:
            return False
        others = Delivery.objects.filter(
            step_name=delivery.step_name, message_group=delivery.message_group
        ).exclude(pk=delivery.pk)
        earlier = Q(pk__lt=delivery.pk, status__in=[Status.PENDING, Status.RUNNING])
        return others.filter(earlier | Q(status=Status.RUNNING)).exists()

    # Leases --------------------------------------------------------------------

    def renew(self, claims):
        """Extend the leases of ``claims`` still held, each by its step's lease; returns
        how many were renewed (a claim taken over or cancelled is not). Rows another
        transaction holds (a recorder finishing them) are skipped, and the others locked
        in id order, so a renewal never deadlocks with a recorder."""
        if not claims:
            return 0
        with transaction.atomic():
            free = owned(claims).select_for_update(skip_locked=True).order_by("pk")
            return Delivery.objects.filter(pk__in=list(free.values_list("pk", flat=True))).update(
                claimed_until=lease_expression(timezone.now())
            )

    def expire_leases(self, worker, reason):
        """End now every lease ``worker`` holds (its process died): their runs are
        interrupted with ``reason`` and the deliveries claimable at once; returns their ids."""
        now = timezone.now()
        with transaction.atomic():
            held = Delivery.objects.filter(status=Status.RUNNING, claimed_by=worker)
            ids = list(held.select_for_update().values_list("pk", flat=True))
            if not ids:
                return []
            Delivery.objects.filter(pk__in=ids).update(claimed_until=now, enqueued_at=None)
            Run.objects.filter(delivery_id__in=ids, status=Run.Status.RUNNING).update(
                status=Run.Status.INTERRUPTED, finished_at=now, error=reason
            )
        return ids

    def claimants(self, prefix):
        """The workers (ids beginning with ``prefix``) holding running deliveries."""
        held = Delivery.objects.filter(status=Status.RUNNING, claimed_by__startswith=prefix)
        return sorted(set(held.values_list("claimed_by", flat=True)))

    def release(self, claims, reason):
        """Hand running deliveries back (their worker is stopping): pending, due now, the
        attempt uncounted; their runs are interrupted with ``reason``. Returns how many
        were still held."""
        if not claims:
            return 0
        now = timezone.now()
        with transaction.atomic():
            released = owned(claims).update(
                status=Status.PENDING,
                attempts=F("attempts") - 1,
                due_at=now,
                enqueued_at=None,
                claim_token=None,
                claimed_until=None,
                claimed_by="",
            )
            runs = [claim.run.pk for claim in claims]
            Run.objects.filter(pk__in=runs, status=Run.Status.RUNNING).update(
                status=Run.Status.INTERRUPTED, finished_at=now, error=reason
            )
        return released


def _as_read(delivery):
    """The delivery's row, only if nobody changed it since it was read."""
    return Delivery.objects.filter(
        pk=delivery.pk,
        status=delivery.status,
        attempts=delivery.attempts,
        claim_token=delivery.claim_token,
    )


def _interrupt_presumed_dead(delivery, now):
    if delivery.status == Status.RUNNING:
        Run.objects.filter(delivery=delivery, status=Run.Status.RUNNING).update(
            status=Run.Status.INTERRUPTED, finished_at=now, error=PRESUMED_DEAD
        )
