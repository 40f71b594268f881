"""The ticker: cron slots (once per step and slot) and the sweeper's wake-ups."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from workflow import queue
from workflow.conf import workflow_settings
from workflow.models import Delivery, Trace
from workflow.steps import CronStep
from workflow.ticker import Ticker, cron_slot, fire_cron, sweep

from .test_bus import woken_ids

Status = Delivery.Status
pytestmark = pytest.mark.store


def at(hour, minute, second=0):
    return datetime(2024, 5, 1, hour, minute, second, tzinfo=UTC)


def cron_step(steps, name="Every5", cron="*/5 * * * *"):
    return steps.add(CronStep(name=name, cron=cron), lambda ctx: None)


def test_cron_slot_is_the_latest_firing_at_or_before_now():
    """cron_slot() rounds down to the expression's last firing, and keeps an exact one."""
    assert cron_slot("*/5 * * * *", at(12, 7, 30)) == at(12, 5)
    assert cron_slot("*/5 * * * *", at(12, 5)) == at(12, 5)
    assert cron_slot("0 3 * * *", at(12, 0)) == at(3, 0)


@pytest.mark.django_db
def test_fire_cron_creates_one_delivery_per_step_and_slot(steps):
    """fire_cron() makes one delivery per (step, slot); the same slot again returns False."""
    step = cron_step(steps)
    other = cron_step(steps, name="Other")
    assert fire_cron(step, at(12, 5)) is True
    assert fire_cron(step, at(12, 5)) is False
    assert fire_cron(other, at(12, 5)) is True
    assert fire_cron(step, at(12, 10)) is True
    rows = Delivery.objects.order_by("id")
    assert list(rows.values_list("step_name", "cron_slot")) == [
        ("Every5", at(12, 5)),
        ("Other", at(12, 5)),
        ("Every5", at(12, 10)),
    ]
    first = rows.first()
    assert (first.status, first.due_at, first.event_id) == (Status.PENDING, at(12, 5), None)
    # Each slot begins a trace of its own (the workbench lists it), named for the step.
    trace = Trace.objects.get(trace_id=first.trace_id)
    assert (trace.entry_step, trace.started_at) == ("Every5", at(12, 5))
    assert Trace.objects.count() == 3


@pytest.mark.django_db
def test_fire_cron_sends_a_wake_up_on_commit(steps, django_capture_on_commit_callbacks):
    """A fired slot's delivery gets its wake-up job when the transaction commits."""
    step = cron_step(steps)
    with django_capture_on_commit_callbacks(execute=True):
        fire_cron(step, at(12, 5))
    assert woken_ids() == [Delivery.objects.get().pk]


@pytest.mark.django_db
def test_tick_fires_only_slots_after_the_ticker_started(steps):
    """tick() skips the slot the ticker started in and fires each later slot once."""
    cron_step(steps, cron="* * * * *")
    ticker = Ticker()
    ticker.started_at = at(12, 0, 30)
    ticker.tick(at(12, 0, 45))  # slot 12:00 began before the ticker
    assert not Delivery.objects.exists()
    ticker.tick(at(12, 1, 10))
    ticker.tick(at(12, 1, 50))  # same slot
    ticker.tick(at(12, 2, 5))
    slots = Delivery.objects.order_by("cron_slot").values_list("cron_slot", flat=True)
    assert list(slots) == [at(12, 1), at(12, 2)]


@pytest.mark.django_db
def test_two_tickers_fire_a_slot_once(steps):
    """Two tickers (two clusters) ticking the same slot create one delivery."""
    cron_step(steps, cron="* * * * *")
    first, second = Ticker(), Ticker()
    for ticker in (first, second):
        ticker.started_at = at(12, 0, 30)
        ticker.tick(at(12, 1, 10))
    assert Delivery.objects.count() == 1


def make(status=Status.PENDING, due=0, enqueued=None, claimed=None, now=None):
    """A delivery due ``due`` seconds from now, enqueued/claimed that many seconds from now."""
    now = now or timezone.now()
    return Delivery.objects.create(
        step_name="S",
        trace_id="t" * 32,
        status=status,
        due_at=now + timedelta(seconds=due),
        enqueued_at=None if enqueued is None else now + timedelta(seconds=enqueued),
        claimed_until=None if claimed is None else now + timedelta(seconds=claimed),
    )


@pytest.mark.django_db
def test_sweep_wakes_unwoken_lost_and_presumed_dead_deliveries():
    """sweep() sends jobs for due unwoken, stale-enqueued and expired running deliveries only."""
    now = timezone.now()
    stale = -(workflow_settings.REENQUEUE_AFTER + 10)
    unwoken = make(due=-5, now=now)
    lost = make(due=-100, enqueued=stale, now=now)
    presumed_dead = make(Status.RUNNING, due=-100, enqueued=stale, claimed=-1, now=now)
    untouched = [
        make(due=60, now=now),  # not due yet
        make(Status.SUCCEEDED, due=-5, now=now),
        make(Status.DEAD, due=-5, now=now),
        make(due=-5, enqueued=-5, now=now),  # its job was sent recently
        make(Status.RUNNING, due=-5, enqueued=stale, claimed=30, now=now),  # still held
    ]
    before = {d.pk: d.enqueued_at for d in untouched}
    assert sweep(now) == 3
    expected = sorted([unwoken.pk, lost.pk, presumed_dead.pk])
    assert woken_ids() == expected
    swept = Delivery.objects.filter(pk__in=expected)
    assert {d.enqueued_at for d in swept} == {now}
    after = dict(Delivery.objects.filter(pk__in=before).values_list("pk", "enqueued_at"))
    assert after == before


@pytest.mark.django_db
def test_sweep_with_nothing_to_wake_sends_nothing():
    """sweep() returns 0 and sends no job when every delivery is carried or not due."""
    make(due=60)
    make(due=-5, enqueued=-1)
    assert sweep() == 0
    assert not OrmQ.objects.exists()


@pytest.mark.django_db
def test_a_second_sweep_does_not_wake_the_same_delivery_again():
    """A delivery swept once counts as enqueued, so the next sweep leaves it."""
    make(due=-5)
    assert sweep() == 1
    assert sweep() == 0
    assert OrmQ.objects.count() == 1


@pytest.mark.django_db
def test_sweep_leaves_jobs_sent_long_ago_alone_while_jobs_wait_in_the_broker(monkeypatch):
    """A delivery whose job was sent more than REENQUEUE_AFTER ago is not woken again
    while the broker still holds jobs waiting (a backlog, not a lost job); once none
    waits, it is. Unwoken deliveries are woken either way."""
    now = timezone.now()
    stale = -(workflow_settings.REENQUEUE_AFTER + 10)
    waiting = make(due=-100, enqueued=stale, now=now)
    unwoken = make(due=-5, now=now)
    monkeypatch.setattr(queue, "jobs_waiting", lambda: 3)
    assert sweep(now) == 1
    assert woken_ids() == [unwoken.pk]
    monkeypatch.setattr(queue, "jobs_waiting", lambda: 0)
    assert sweep(now) == 1
    assert woken_ids() == sorted([unwoken.pk, waiting.pk])
