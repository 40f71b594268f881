"""Pausing a step's queue: its deliveries wait while it is paused.

    pauses.pause("SendWelcomeEmail", by="alice")   # new and retried deliveries wait
    pauses.resume("SendWelcomeEmail")              # they are woken at the next tick

A paused step's pending deliveries are neither claimed nor woken (the claims and the
sweeper skip them, in the same statement that takes the others, so a pause holds from
its commit on, in every process); attempts already running finish, and a failed one
is retried after the resume. Emits to the step are recorded as usual, so nothing is
lost while it is paused. ``manage.py pause`` and ``manage.py resume`` call these.
"""

from django.db import transaction

from .models import Delivery, PausedQueue
from .registry import registry


class UnknownStep(LookupError):
    """No step of the registry has that name (or it has no queue: an API or noop step)."""


def queued_step(step_name: str):
    """The registered event or cron step named ``step_name``, or ``UnknownStep``."""
    step = registry.get(step_name)
    if step is None or step.type not in ("event", "cron"):
        queued = sorted(s.name for s in registry if s.type in ("event", "cron"))
        raise UnknownStep(
            f"no event or cron step is named {step_name!r}; steps with a queue: "
            + (", ".join(queued) or "none")
        )
    return step


def pause(step_name: str, by: str = "") -> bool:
    """Pause ``step_name``'s queue; False if it was paused already."""
    queued_step(step_name)
    _, created = PausedQueue.objects.get_or_create(step_name=step_name, defaults={"paused_by": by})
    return created


def resume(step_name: str) -> bool:
    """Resume ``step_name``'s queue; False if it was not paused. Its pending deliveries
    are woken by the sweeper at its next tick (their spent wake-ups are forgotten)."""
    queued_step(step_name)
    with transaction.atomic():
        deleted, _ = PausedQueue.objects.filter(step_name=step_name).delete()
        Delivery.objects.filter(
            step_name=step_name, status=Delivery.Status.PENDING, enqueued_at__isnull=False
        ).update(enqueued_at=None)
    return bool(deleted)


def paused() -> dict[str, PausedQueue]:
    """The paused queues, by step name."""
    return {row.step_name: row for row in PausedQueue.objects.all()}
