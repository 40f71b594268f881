"""Replay: run a finished delivery again, with its original event, input and trace.

A replay is a new delivery (its own attempts and runs) linked to the one it re-runs
by ``replay_of``, so the dead letter and its history stay as they were. Only finished
deliveries (succeeded or dead) are replayed; a pending or running one will run anyway.
"""

from django.db import transaction
from django.utils import timezone

from . import bus
from .models import Delivery

Status = Delivery.Status
FINISHED = (Status.SUCCEEDED, Status.DEAD)


class NotReplayable(Exception):
    """The delivery cannot be replayed (it is not finished yet)."""


def replay(delivery):
    """A new delivery re-running ``delivery``, woken once the transaction commits."""
    if delivery.status not in FINISHED:
        raise NotReplayable(
            f"delivery {delivery.pk} ({delivery.step_name}) is {delivery.status}; "
            "only succeeded or dead deliveries are replayed"
        )
    now = timezone.now()
    with transaction.atomic():
        again = Delivery.objects.create(
            event_id=delivery.event_id,
            step_name=delivery.step_name,
            trace_id=delivery.trace_id,
            message_group=delivery.message_group,
            replay_of=delivery,
            due_at=now,
            created_at=now,
        )
        transaction.on_commit(lambda: bus.wake([again.pk]), robust=True)
    return again


def latest_per_step(deliveries):
    """Of each step's deliveries, the newest (a replay rather than what it replayed)."""
    newest = {}
    for delivery in sorted(deliveries, key=lambda d: d.pk):
        newest[delivery.step_name] = delivery
    return list(newest.values())


def replay_event(event):
    """Replay the newest finished delivery of ``event`` to each of its subscribers."""
    chosen = latest_per_step(event.deliveries.all())
    return [replay(d) for d in chosen if d.status in FINISHED]
