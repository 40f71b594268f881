"""Replay: run a finished delivery again, with its original event, input and trace.

A replay is a new delivery (its own attempts and runs) linked to the one it re-runs
by ``replay_of``, so the dead letter and its history stay as they were. Only finished
deliveries (succeeded or dead) are replayed, and each at most once at a time: a
delivery whose replay waits, runs or succeeded is not replayed again (two replays
submitted at once make one). ``dead_letters()`` leaves out those whose step has since
succeeded for the same event, so replaying every dead letter repeats no success, and
``replay_event()`` re-runs only the subscribers whose newest delivery of the event went
dead, unless told to re-run the succeeded ones too.
"""

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from . import queue
from .errors import NotReplayable
from .models import Delivery
from .store import store

__all__ = [
    "FINISHED",
    "NotReplayable",
    "dead_letters",
    "replay",
    "replay_each",
    "replay_event",
    "skip_reason",
]

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


def replay_event(event, succeeded_too=False):
    """Replay, for each subscriber of ``event``, its newest delivery of it if that went
    dead (or succeeded, with ``succeeded_too``); returns ``(replays, refusals, skipped)``,
    ``skipped`` being the newest deliveries left as they are (``skip_reason`` says why)."""
    wanted = FINISHED if succeeded_too else (Status.DEAD,)
    newest = latest_per_step(event.deliveries.all())
    replays, refusals = replay_each(d for d in newest if d.status in wanted)
    return replays, refusals, [d for d in newest if d.status not in wanted]


SKIPPED = {
    Status.SUCCEEDED: "succeeded",
    Status.PENDING: "is pending (it will run)",
    Status.RUNNING: "is running (replay it once it has finished, if it must)",
    Status.CANCELLED: "was cancelled (emit again if the work must be done)",
}


def skip_reason(delivery):
    """Why ``replay_event`` left ``delivery`` alone, e.g. "delivery 4 (Ship) of event 2
    succeeded"."""
    return (
        f"delivery {delivery.pk} ({delivery.step_name}) of event {delivery.event_id} "
        + SKIPPED.get(delivery.status, f"is {delivery.status}")
    )


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
