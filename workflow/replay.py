"""Replay: run a finished delivery again, with its original event, input and trace.

A replay is a new delivery (its own attempts and runs) linked to the one it re-runs
by ``replay_of``, so the dead letter and its history stay as they were. Only finished
deliveries (succeeded or dead) are replayed, and each at most once at a time: a
delivery whose replay waits, runs or succeeded is not replayed again (two replays
submitted at once make one). ``dead_letters()`` leaves out those whose step has since
succeeded for the same event, so replaying every dead letter repeats no success.
"""

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from . import queue
from .errors import NotReplayable
from .models import Delivery
from .store import store

__all__ = ["FINISHED", "NotReplayable", "dead_letters", "replay", "replay_each", "replay_event"]

Status = Delivery.Status
FINISHED = (Status.SUCCEEDED, Status.DEAD)


def replay(delivery):
    """A new delivery re-running ``delivery``, woken once the transaction commits;
    ``NotReplayable`` (saying why) if it is not finished or already replayed."""
    again = store.record_replay(delivery)
    transaction.on_commit(lambda: queue.wake([again.pk]), robust=True)
    return again


def latest_per_step(deliveries):
    """Of each step's deliveries, the newest (a replay rather than what it replayed)."""
    newest = {}
    for delivery in sorted(deliveries, key=lambda d: d.pk):
        newest[delivery.step_name] = delivery
    return list(newest.values())


def replay_each(deliveries):
    """Replay each of ``deliveries`` that can be; returns ``(replays, refusals)``, a
    refusal being the ``NotReplayable`` message of one that cannot."""
    replays, refusals = [], []
    for delivery in deliveries:
        try:
            with transaction.atomic():
                replays.append(replay(delivery))
        except NotReplayable as exc:
            refusals.append(str(exc))
    return replays, refusals


def replay_event(event):
    """Replay the newest finished delivery of ``event`` to each of its subscribers;
    returns ``(replays, refusals)``."""
    newest = latest_per_step(event.deliveries.all())
    return replay_each(d for d in newest if d.status in FINISHED)


def dead_letters(step=None):
    """Dead deliveries worth replaying: not yet replayed, and whose step has not since
    succeeded for the same event (or, for a cron slot, in the same trace)."""
    succeeded = Delivery.objects.filter(
        step_name=OuterRef("step_name"), status=Status.SUCCEEDED
    ).filter(
        Q(event_id=OuterRef("event_id"), event_id__isnull=False)
        | Q(event_id__isnull=True, trace_id=OuterRef("trace_id"))
    )
    found = Delivery.objects.filter(status=Status.DEAD, replays__isnull=True).filter(
        ~Exists(succeeded)
    )
    return found.filter(step_name=step) if step else found
