"""Pausing a step's queue: its deliveries wait, unclaimed and unwoken, until resumed;
the other steps' run on. Marked ``store``: these run on PostgreSQL too, where claims
are SQL of their own (tests/test_on_postgres.py)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from workflow import bus, pauses
from workflow.models import Delivery
from workflow.steps import ApiStep, EventStep
from workflow.store import store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.store]
Status = Delivery.Status


def handler(input, ctx):
    pass


@pytest.fixture
def two(steps):
    steps.add(EventStep(name="Held", subscribes=["t"]), handler)
    steps.add(EventStep(name="Free", subscribes=["t"]), handler)
    return steps


def deliveries_of(step_name):
    return list(Delivery.objects.filter(step_name=step_name).values_list("pk", flat=True))


def test_a_paused_steps_deliveries_are_not_claimed_until_it_is_resumed(two):
    """claim() takes the other step's deliveries and leaves the paused one's pending;
    after the resume they are claimed as any others."""
    bus.emit("t", {"n": 1})
    bus.emit("t", {"n": 2})
    assert pauses.pause("Held", by="alice") is True
    assert pauses.pause("Held") is False  # already paused
    assert pauses.paused()["Held"].paused_by == "alice"
    claimed = store.claim(deliveries_of("Held") + deliveries_of("Free"), "w1")
    assert sorted(c.delivery.step_name for c in claimed) == ["Free", "Free"]
    assert set(Delivery.objects.filter(step_name="Held").values_list("status", flat=True)) == {
        Status.PENDING
    }
    assert pauses.resume("Held") is True
    assert pauses.resume("Held") is False  # not paused any more
    claimed = store.claim(deliveries_of("Held"), "w1")
    assert [c.delivery.step_name for c in claimed] == ["Held", "Held"]


def test_the_sweeper_wakes_no_delivery_of_a_paused_step_and_all_of_them_on_resume(two):
    """take_due() skips a paused step, so no wake-up is sent for it over and over; a
    resume forgets the wake-ups spent while it was paused, and the next sweep sends
    them again."""
    bus.emit("t", {"n": 1})
    held = deliveries_of("Held")
    Delivery.objects.filter(pk__in=held).update(enqueued_at=timezone.now())  # a spent job
    pauses.pause("Held")
    later = timezone.now() + timedelta(seconds=60)  # long past REENQUEUE_AFTER
    assert store.take_due(later, later) == deliveries_of("Free")
    pauses.resume("Held")
    assert Delivery.objects.get(pk=held[0]).enqueued_at is None
    assert store.take_due(timezone.now()) == held


def test_a_lease_that_runs_out_is_not_taken_again_while_paused(two):
    """A running attempt of a paused step goes on; if its lease runs out, its delivery
    waits for the resume as the pending ones do."""
    bus.emit("t", {"n": 1})
    [claim] = store.claim(deliveries_of("Held"), "w1")
    pauses.pause("Held")
    Delivery.objects.filter(pk=claim.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert store.claim([claim.pk], "w2") == []
    pauses.resume("Held")
    [again] = store.claim([claim.pk], "w2")
    assert again.delivery.attempts == 2


def test_an_emit_to_a_paused_step_is_recorded_and_runs_after_the_resume(two, flow):
    """Nothing is lost while paused: the event and its delivery are recorded, and the
    handler runs once the queue is resumed."""
    pauses.pause("Held")
    flow.emit("t", {"n": 1})
    assert Delivery.objects.get(step_name="Held").status == Status.PENDING
    assert Delivery.objects.get(step_name="Free").status == Status.SUCCEEDED
    pauses.resume("Held")
    flow.run_until_quiet()
    assert Delivery.objects.get(step_name="Held").status == Status.SUCCEEDED


def test_only_a_step_with_a_queue_can_be_paused(two):
    two.add(ApiStep(name="Api", method="GET", path="/x"), lambda request, ctx: None)
    for name in ("Nope", "Api"):
        with pytest.raises(pauses.UnknownStep, match="steps with a queue: Free, Held"):
            pauses.pause(name)


def test_the_pause_and_resume_commands(two):
    out = StringIO()
    call_command("pause", "Held", stdout=out)
    call_command("pause", "Held", stdout=out)
    call_command("pause", "--list", stdout=out)
    call_command("resume", "Held", stdout=out)
    call_command("pause", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["Held: paused", "Held: already paused"]
    assert lines[2].startswith("Held: paused since ") and lines[2].endswith("by manage.py pause")
    assert lines[3:] == ["Held: resumed", "no queue is paused"]
    with pytest.raises(CommandError, match="no event or cron step is named 'Nope'"):
        call_command("pause", "Nope")
    with pytest.raises(CommandError, match="no event or cron step is named 'Nope'"):
        call_command("resume", "Nope")
