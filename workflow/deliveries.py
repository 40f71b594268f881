"""The life of a delivery in the table: claim, complete, fail, release.

Every change is a compare-and-set on the claim token, so a job handed out twice, a
worker presumed dead that comes back, or two clusters racing on one delivery can
never both win: a delivery that succeeded is never run again.
"""

import uuid
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import bus
from .models import Delivery, Run
from .policy import QueuePolicy
from .registry import registry

Status = Delivery.Status


class ClaimLost(Exception):
    """The attempt no longer holds its delivery (its visibility timeout passed)."""


def claimable(now):
    """Deliveries a worker may take now: due pending ones, and presumed-dead runs."""
    return Q(status=Status.PENDING, due_at__lte=now) | Q(
        status=Status.RUNNING, claimed_until__lt=now
    )


PRESUMED_DEAD = "Presumed dead: the visibility timeout passed"


def claim(delivery_id, worker=""):
    """Take ``delivery_id`` for one attempt; returns ``(delivery, run)`` or None.

    A run presumed dead counts as a failed attempt: once it was the last one allowed,
    the delivery goes dead instead of running again (a handler that kills its worker
    every time is not retried forever).
    """
    now = timezone.now()
    delivery = (
        Delivery.objects.select_related("event").filter(claimable(now), pk=delivery_id).first()
    )
    if delivery is None or waits_its_turn(delivery):
        return None
    policy = QueuePolicy.for_step(registry.get(delivery.step_name))
    if delivery.status == Status.RUNNING and delivery.attempts > policy.max_retries:
        bury(delivery, now)
        return None
    held = {
        "status": Status.RUNNING,
        "attempts": delivery.attempts + 1,
        "claim_token": uuid.uuid4(),
        "claimed_until": now + timedelta(seconds=policy.visibility_timeout),
        # The job that woke it is spent: if this run is presumed dead, the sweeper wakes it.
        "enqueued_at": None,
    }
    with transaction.atomic():
        if not _as_read(delivery).update(**held):
            return None
        _interrupt_presumed_dead(delivery, now)
        for name, value in held.items():
            setattr(delivery, name, value)
        run = Run.of_attempt(delivery, worker, now)
        run.save()
    return delivery, run


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


def bury(delivery, now):
    """A presumed-dead run that was the last attempt allowed: the delivery is dead."""
    error = f"{PRESUMED_DEAD} on attempt {delivery.attempts}, the last one allowed"
    with transaction.atomic():
        buried = _as_read(delivery).update(
            status=Status.DEAD,
            finished_at=now,
            claim_token=None,
            claimed_until=None,
            enqueued_at=None,
            last_error=error,
        )
        if buried:
            _interrupt_presumed_dead(delivery, now)
            wake_next_in_group(delivery)
    return bool(buried)


def waits_its_turn(delivery):
    """A fifo delivery waits while an earlier one of its group is pending or running."""
    if delivery.message_group is None:
        return False
    return Delivery.objects.filter(
        step_name=delivery.step_name,
        message_group=delivery.message_group,
        pk__lt=delivery.pk,
        status__in=[Status.PENDING, Status.RUNNING],
    ).exists()


def wake_next_in_group(delivery):
    """Once a fifo delivery is done (succeeded or dead), wake the next of its group."""
    if delivery.message_group is None:
        return
    following = Delivery.objects.filter(
        step_name=delivery.step_name,
        message_group=delivery.message_group,
        pk__gt=delivery.pk,
        status=Status.PENDING,
    ).order_by("pk")[:1]

    def wake_if_due():
        # One not due yet (a delayed emit) is left to the sweeper, which wakes it when
        # due: a job now would find it not due, and its mark would hold the sweeper off.
        now = timezone.now()
        bus.wake([pk for pk, due_at in following.values_list("pk", "due_at") if due_at <= now])

    transaction.on_commit(wake_if_due, robust=True)


def _owned(delivery):
    return Delivery.objects.filter(
        pk=delivery.pk, status=Status.RUNNING, claim_token=delivery.claim_token
    )


def complete(delivery, run, write):
    """Record success and call ``write()`` (the attempt's held writes) in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        done = _owned(delivery).update(
            status=Status.SUCCEEDED,
            finished_at=now,
            claim_token=None,
            claimed_until=None,
            last_error="",
        )
        if not done:
            raise ClaimLost(f"delivery {delivery.pk} was taken over before it finished")
        write()
        Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCEEDED, finished_at=now)
        wake_next_in_group(delivery)


def fail(delivery, run, error, traceback_text="", retry=True):
    """Record a failed attempt: retry after the backoff, or dead after the last one.

    Returns the delivery's new status, or None if the attempt no longer held it (it
    was handed back or taken over): then neither the delivery nor the run changes.
    """
    now = timezone.now()
    policy = QueuePolicy.for_step(registry.get(delivery.step_name))
    if retry and delivery.attempts <= policy.max_retries:
        due = now + timedelta(seconds=policy.retry_delay(delivery.attempts))
        outcome = {"status": Status.PENDING, "due_at": due, "enqueued_at": None}
    else:
        outcome = {"status": Status.DEAD, "finished_at": now}
    with transaction.atomic():
        held = _owned(delivery).update(
            **outcome, claim_token=None, claimed_until=None, last_error=error[:10000]
        )
        if not held:
            return None
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.FAILED,
            finished_at=now,
            error=error[:10000],
            traceback=traceback_text,
        )
        if outcome["status"] == Status.DEAD:
            wake_next_in_group(delivery)
    return outcome["status"]


def release(delivery, run, reason):
    """Hand a running delivery back (its worker is stopping): due now, attempt uncounted."""
    now = timezone.now()
    with transaction.atomic():
        released = _owned(delivery).update(
            status=Status.PENDING,
            attempts=F("attempts") - 1,
            due_at=now,
            enqueued_at=None,
            claim_token=None,
            claimed_until=None,
        )
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.INTERRUPTED, finished_at=now, error=reason
        )
    return bool(released)


def hand_back_wake(delivery_id):
    """A wake-up that found no free worker: leave the delivery to the sweeper."""
    Delivery.objects.filter(pk=delivery_id, status=Status.PENDING).update(enqueued_at=None)
