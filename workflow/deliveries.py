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


def claim(delivery_id, worker=""):
    """Take ``delivery_id`` for one attempt; returns ``(delivery, run)`` or None."""
    now = timezone.now()
    delivery = (
        Delivery.objects.select_related("event").filter(claimable(now), pk=delivery_id).first()
    )
    if delivery is None:
        return None
    policy = QueuePolicy.for_step(registry.get(delivery.step_name))
    held = {
        "status": Status.RUNNING,
        "attempts": delivery.attempts + 1,
        "claim_token": uuid.uuid4(),
        "claimed_until": now + timedelta(seconds=policy.visibility_timeout),
    }
    with transaction.atomic():
        taken = Delivery.objects.filter(
            pk=delivery.pk,
            status=delivery.status,
            attempts=delivery.attempts,
            claim_token=delivery.claim_token,
        ).update(**held)
        if not taken:
            return None
        if delivery.status == Status.RUNNING:
            Run.objects.filter(delivery=delivery, status=Run.Status.RUNNING).update(
                status=Run.Status.INTERRUPTED,
                finished_at=now,
                error="Presumed dead: the visibility timeout passed",
            )
        for name, value in held.items():
            setattr(delivery, name, value)
        run = Run.objects.create(
            step_name=delivery.step_name,
            trace_id=delivery.trace_id,
            delivery=delivery,
            attempt=delivery.attempts,
            started_at=now,
            worker=worker,
        )
    return delivery, run


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
