"""fifo queues: deliveries of one message group are claimed one at a time, in emit order.

These tests claim and record outcomes through the store directly, in a test
transaction; recording an outcome that ends a group's delivery returns the next one
of the group to wake (the worker wakes it once the record committed).
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from workflow import bus
from workflow.models import Delivery
from workflow.policy import QueuePolicy
from workflow.steps import EventStep
from workflow.store import Outcome, store, store_for

pytestmark = [pytest.mark.django_db, pytest.mark.store]
Status = Delivery.Status


def handler(input, ctx):
    pass


def add_fifo(steps, name="PerUser", topic="msg"):
    queue = {"type": "fifo", "message_group_id": "userId"}
    steps.add(EventStep(name=name, subscribes=[topic], infrastructure={"queue": queue}), handler)


def claim(delivery_id):
    """The store's claim of one delivery, or None."""
    claimed = store.claim([delivery_id])
    return claimed[0] if claimed else None


def succeed(claimed):
    """Record the attempt's success; the ids to wake."""
    _, wake = store.record([Outcome.success(claimed)])
    return wake


def fail(claimed, final=False):
    """Record the attempt's failure; (the delivery's new status, the ids to wake)."""
    (recorded,), wake = store.record([Outcome.failure(claimed, "boom", final=final)])
    return recorded.status, wake


def emit(data, topic="msg", **options):
    """Emit ``data`` and return its single delivery."""
    return Delivery.objects.get(event=bus.emit(topic, data, **options))


def test_a_fifo_delivery_waits_while_an_earlier_one_of_its_group_is_pending(steps):
    """The second delivery of a group is refused while the first is still pending."""
    add_fifo(steps)
    first = emit({"userId": "u1", "n": 1})
    second = emit({"userId": "u1", "n": 2})
    assert (first.message_group, second.message_group) == ("u1", "u1")
    assert claim(second.pk) is None
    row = Delivery.objects.get(pk=second.pk)
    assert (row.status, row.attempts) == (Status.PENDING, 0)
    assert claim(first.pk) is not None


def test_long_groups_that_share_their_start_are_two_groups(steps):
    """A group longer than its column is stored as its start and a digest of the whole:
    two such groups are not queued as one."""
    add_fifo(steps)
    start = "u" * 300
    first, second = emit({"userId": start + "1"}), emit({"userId": start + "2"})
    assert first.message_group != second.message_group
    assert len(first.message_group) == Delivery._meta.get_field("message_group").max_length
    assert first.message_group.startswith("u" * 100)
    assert claim(first.pk) is not None
    assert claim(second.pk) is not None


def test_a_fifo_delivery_waits_while_an_earlier_one_of_its_group_is_running(steps):
    """The second delivery of a group is refused while the first is running."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    assert claim(first.pk) is not None
    assert claim(second.pk) is None
    assert Delivery.objects.get(pk=second.pk).status == Status.PENDING


def test_a_fifo_delivery_waits_while_an_earlier_one_is_pending_a_retry(steps):
    """A first delivery that failed and waits for its retry still holds its group back."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    assert fail(claim(first.pk))[0] == Status.PENDING
    assert claim(second.pk) is None


def test_a_fifo_delivery_is_claimed_once_the_earlier_one_succeeded(steps):
    """After the first delivery of a group succeeded, the second is claimed."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    succeed(claim(first.pk))
    claimed = claim(second.pk)
    assert claimed is not None
    assert claimed.delivery.status == Status.RUNNING


def test_a_fifo_delivery_is_claimed_once_the_earlier_one_went_dead(steps):
    """A dead first delivery does not block its group: the second is claimed."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    assert fail(claim(first.pk), final=True)[0] == Status.DEAD
    assert claim(second.pk) is not None


def test_another_group_is_not_held_back(steps):
    """A pending delivery of one group does not hold back a later one of another group."""
    add_fifo(steps)
    emit({"userId": "u1"})
    other = emit({"userId": "u2"})
    assert other.message_group == "u2"
    assert claim(other.pk) is not None


def test_the_same_group_of_another_step_is_not_held_back(steps):
    """Groups are per step: another fifo step's delivery of the same group is not held back."""
    add_fifo(steps, "First", topic="a")
    add_fifo(steps, "Second", topic="b")
    emit({"userId": "u1"}, topic="a")
    other = emit({"userId": "u1"}, topic="b")
    assert claim(other.pk) is not None


def test_a_standard_step_is_never_held_back(steps):
    """A standard step's deliveries have no group and are claimed in any order."""
    steps.add(EventStep(name="Plain", subscribes=["msg"]), handler)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    assert (first.message_group, second.message_group) == (None, None)
    assert claim(second.pk) is not None
    assert claim(first.pk) is not None


def test_an_event_without_the_field_falls_into_the_empty_group(steps):
    """Events lacking the message_group_id field (or with it null) share the "" group."""
    add_fifo(steps)
    first = emit({"other": 1})
    second = emit({"userId": None})
    assert (first.message_group, second.message_group) == ("", "")
    assert claim(second.pk) is None
    assert claim(first.pk) is not None


def test_message_group_is_the_fields_value_as_a_string(steps):
    """QueuePolicy.message_group: the field's value as a string for fifo, None for standard."""
    add_fifo(steps)
    fifo = QueuePolicy.for_step(steps.get("PerUser"))
    assert fifo.message_group({"userId": 7}) == "7"
    long = fifo.message_group({"userId": "x" * 300})  # its start and a digest of the whole
    assert len(long) == 200 and long.startswith("x" * 135)
    assert long != fifo.message_group({"userId": "x" * 301})
    assert fifo.message_group([1, 2]) == ""
    standard = QueuePolicy.for_step(steps.add(EventStep(name="Plain", subscribes=["t"]), handler))
    assert standard.message_group({"userId": 7}) is None


def test_claim_clears_enqueued_at(steps):
    """A claim spends the job that woke the delivery: enqueued_at becomes None."""
    add_fifo(steps)
    delivery = emit({"userId": "u1"})
    Delivery.objects.filter(pk=delivery.pk).update(enqueued_at=timezone.now())
    claimed = claim(delivery.pk).delivery
    assert claimed.enqueued_at is None
    assert Delivery.objects.get(pk=delivery.pk).enqueued_at is None


def test_success_returns_the_next_pending_delivery_of_the_group_to_wake(steps):
    """Recording a success returns only the next pending delivery of the group to wake."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    emit({"userId": "u1"})  # third: waits for the second
    emit({"userId": "u2"})  # another group
    assert succeed(claim(first.pk)) == [second.pk]


def test_a_dead_delivery_returns_the_next_pending_delivery_of_the_group(steps):
    """A failure that makes a delivery dead returns the next pending one of its group."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    assert fail(claim(first.pk), final=True) == (Status.DEAD, [second.pk])


def test_a_failure_that_will_be_retried_wakes_nobody(steps):
    """A delivery pending its retry still holds the group: nothing is woken."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    emit({"userId": "u1"})
    assert fail(claim(first.pk)) == (Status.PENDING, [])


def test_a_next_delivery_not_due_yet_is_left_to_the_sweeper(steps):
    """The next delivery of the group, emitted with a delay, is not returned to wake."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    later = emit({"userId": "u1"}, delay=30)
    assert later.due_at > timezone.now() + timedelta(seconds=20)
    assert succeed(claim(first.pk)) == []
    assert Delivery.objects.get(pk=later.pk).enqueued_at is None


def test_a_standard_step_wakes_nobody_when_a_delivery_finishes(steps):
    """Finishing a standard step's delivery returns nothing to wake."""
    steps.add(EventStep(name="Plain", subscribes=["msg"]), handler)
    first = emit({"userId": "u1"})
    emit({"userId": "u1"})
    assert succeed(claim(first.pk)) == []


def test_the_sweeper_skips_fifo_deliveries_waiting_their_turn(steps, enqueued, jobs_after_commit):
    """sweep() wakes the head of each group and standard deliveries, not the ones
    behind a pending head (the head wakes them when it is done)."""
    from workflow.ticker import sweep

    add_fifo(steps)
    head = emit({"userId": "u1"})
    behind = emit({"userId": "u1"})
    other_group = emit({"userId": "u2"})
    Delivery.objects.update(enqueued_at=None)
    assert sweep() == 2
    assert sorted(enqueued) == sorted([head.pk, other_group.pk])
    assert Delivery.objects.get(pk=behind.pk).enqueued_at is None


def test_an_earlier_delivery_committed_after_a_later_one_waits_while_that_one_runs(steps):
    """On PostgreSQL a delivery's id is handed out before its transaction commits, so a
    later id can be claimable first: while it runs, the earlier one waits (one at a
    time), and its end wakes the earlier one."""
    add_fifo(steps)
    done = emit({"userId": "u1"})
    earlier, later = emit({"userId": "u1"}), emit({"userId": "u1"})
    succeed(claim(done.pk))
    Delivery.objects.filter(pk=earlier.pk).update(status=Status.SUCCEEDED)  # not yet seen
    running = claim(later.pk)
    assert running is not None
    Delivery.objects.filter(pk=earlier.pk).update(status=Status.PENDING)  # now committed
    assert claim(earlier.pk) is None
    assert Delivery.objects.get(pk=earlier.pk).status == Status.PENDING
    assert store.take_due(timezone.now()) == []  # the sweeper leaves it too
    assert succeed(running) == [earlier.pk]
    assert claim(earlier.pk) is not None


def test_a_fifo_run_starts_when_its_turn_came_not_when_its_claim_began(steps, monkeypatch):
    """A claim may wait for its turn (the write lock, its group's lock) while the run
    before it ends: its run's start is read once the turn came, so it is never before
    the end of the run before it."""
    add_fifo(steps)
    delivery = emit({"userId": "u1"})
    chosen = type(store_for())
    waits = chosen.waits_its_turn
    turn_came = []

    def slow_turn(found):
        time.sleep(0.05)  # the turn takes a while to come
        turn_came.append(timezone.now())
        return waits(found)

    monkeypatch.setattr(chosen, "waits_its_turn", staticmethod(slow_turn))
    claimed = claim(delivery.pk)
    assert claimed is not None
    assert claimed.run.started_at >= turn_came[0]
