"""Replay: run a finished delivery again, with its original event, input and trace.

A replay is a new delivery (its own attempts and runs) linked to the one it re-runs
by ``replay_of``, so the dead letter and its history stay as they were. Only finished
deliveries (succeeded or dead) are replayed, and each at most once at a time: a
delivery whose replay waits, runs or succeeded is not replayed again (two replays
submitted at once make one). ``dead_letters()`` leaves out those whose step has since
succeeded for the same event, so replaying every dead letter repeats no success, and
``replay_event()`` re-runs only the subscribers whose newest delivery of the event went
dead, unless told to re-run the succeeded ones too.

``replay_edited()`` replays a delivery on edited data, when the data was the fault: a new
event of the same topic in the same trace, linked to the original (``edited_from``) and
delivered to that one step, as the delivery's replay.
"""

import json

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from rest_framework.exceptions import ValidationError

from . import queue
from .errors import InvalidEmit, NotReplayable
from .jsonutil import json_copy
from .models import Delivery, Event
from .registry import registry
from .schemas import schema_name, validate
from .store import store

__all__ = [
    "FINISHED",
    "NotReplayable",
    "dead_letters",
    "replay",
    "replay_each",
    "replay_edited",
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


def replay_edited(delivery, data):
    """Replay ``delivery`` on ``data`` instead of its event's: a new event of the same
    topic in the same trace, linked to the original by ``edited_from``, delivered to
    ``delivery``'s step only, as its replay (woken once the transaction commits).

    Nothing is recorded when it cannot be done: ``NotReplayable`` (not finished, already
    replayed, a cron slot with no event, a step no longer registered), ``NotJSON``, or
    ``InvalidEmit`` when the step's ``input`` refuses the data (its field messages)."""
    original = delivery.event
    if original is None:
        raise NotReplayable(
            f"delivery {delivery.pk} ({delivery.step_name}) is a cron slot: it has no event "
            "data to edit; replay it as it is"
        )
    step = registry.get(delivery.step_name)
    if step is None:
        raise NotReplayable(f"no step named {delivery.step_name!r} is registered now")
    data = json_copy(data, f"the edited data of delivery {delivery.pk}")
    schema = getattr(step.config, "input", None)
    if schema is not None:
        try:
            validate(schema, data)
        except ValidationError as exc:
            raise InvalidEmit(
                f"{step.name}'s input ({schema_name(schema)}) refuses the edited data: "
                f"{json.dumps(exc.detail)}; nothing was replayed"
            ) from None
    with transaction.atomic():
        edited = Event.objects.create(
            topic=original.topic,
            data=data,
            trace_id=delivery.trace_id,
            emitted_by=original.emitted_by,
            depth=original.depth,
            caused_by_id=original.caused_by_id,
            edited_from=original,
        )
        again = store.record_replay(delivery, event=edited)  # NotReplayable: rolled back
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
