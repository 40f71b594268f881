"""fifo queues: deliveries of one message group are claimed one at a time, in emit order.

These tests call ``deliveries.claim``, ``complete`` and ``fail`` directly in a test
transaction; the wake-up of the next delivery of a group is an on-commit hook, so the
tests that need it capture and run the on-commit callbacks.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from workflow import bus, deliveries
from workflow.models import Delivery
from workflow.policy import QueuePolicy
from workflow.steps import EventStep

pytestmark = pytest.mark.django_db
Status = Delivery.Status


def handler(input, ctx):
    pass


def add_fifo(steps, name="PerUser", topic="msg"):
    queue = {"type": "fifo", "message_group_id": "userId"}
    steps.add(EventStep(name=name, subscribes=[topic], infrastructure={"queue": queue}), handler)


def emit(data, topic="msg", **options):
    """Emit ``data`` and return its single delivery."""
    return Delivery.objects.get(event=bus.emit(topic, data, **options))


def test_a_fifo_delivery_waits_while_an_earlier_one_of_its_group_is_pending(steps):
    """The second delivery of a group is refused while the first is still pending."""
    add_fifo(steps)
    first = emit({"userId": "u1", "n": 1})
    second = emit({"userId": "u1", "n": 2})
    assert (first.message_group, second.message_group) == ("u1", "u1")
    assert deliveries.claim(second.pk) is None
    row = Delivery.objects.get(pk=second.pk)
    assert (row.status, row.attempts) == (Status.PENDING, 0)
    assert deliveries.claim(first.pk) is not None


def test_a_fifo_delivery_waits_while_an_earlier_one_of_its_group_is_running(steps):
    """The second delivery of a group is refused while the first is running."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    assert deliveries.claim(first.pk) is not None
    assert deliveries.claim(second.pk) is None
    assert Delivery.objects.get(pk=second.pk).status == Status.PENDING


def test_a_fifo_delivery_waits_while_an_earlier_one_is_pending_a_retry(steps):
    """A first delivery that failed and waits for its retry still holds its group back."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    delivery, run = deliveries.claim(first.pk)
    assert deliveries.fail(delivery, run, "boom") == Status.PENDING
    assert deliveries.claim(second.pk) is None


def test_a_fifo_delivery_is_claimed_once_the_earlier_one_succeeded(steps):
    """After the first delivery of a group succeeded, the second is claimed."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    delivery, run = deliveries.claim(first.pk)
    deliveries.complete(delivery, run, lambda: None)
    claimed = deliveries.claim(second.pk)
    assert claimed is not None
    assert claimed[0].status == Status.RUNNING


def test_a_fifo_delivery_is_claimed_once_the_earlier_one_went_dead(steps):
    """A dead first delivery does not block its group: the second is claimed."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    delivery, run = deliveries.claim(first.pk)
    assert deliveries.fail(delivery, run, "boom", retry=False) == Status.DEAD
    assert deliveries.claim(second.pk) is not None


def test_another_group_is_not_held_back(steps):
    """A pending delivery of one group does not hold back a later one of another group."""
    add_fifo(steps)
    emit({"userId": "u1"})
    other = emit({"userId": "u2"})
    assert other.message_group == "u2"
    assert deliveries.claim(other.pk) is not None


def test_the_same_group_of_another_step_is_not_held_back(steps):
    """Groups are per step: another fifo step's delivery of the same group is not held back."""
    add_fifo(steps, "First", topic="a")
    add_fifo(steps, "Second", topic="b")
    emit({"userId": "u1"}, topic="a")
    other = emit({"userId": "u1"}, topic="b")
    assert deliveries.claim(other.pk) is not None


def test_a_standard_step_is_never_held_back(steps):
    """A standard step's deliveries have no group and are claimed in any order."""
    steps.add(EventStep(name="Plain", subscribes=["msg"]), handler)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    assert (first.message_group, second.message_group) == (None, None)
    assert deliveries.claim(second.pk) is not None
    assert deliveries.claim(first.pk) is not None


def test_an_event_without_the_field_falls_into_the_empty_group(steps):
    """Events lacking the message_group_id field (or with it null) share the "" group."""
    add_fifo(steps)
    first = emit({"other": 1})
    second = emit({"userId": None})
    assert (first.message_group, second.message_group) == ("", "")
    assert deliveries.claim(second.pk) is None
    assert deliveries.claim(first.pk) is not None


def test_message_group_is_the_fields_value_as_a_string(steps):
    """QueuePolicy.message_group: the field's value as a string for fifo, None for standard."""
    add_fifo(steps)
    fifo = QueuePolicy.for_step(steps.get("PerUser"))
    assert fifo.message_group({"userId": 7}) == "7"
    assert fifo.message_group({"userId": "x" * 300}) == "x" * 200
    assert fifo.message_group([1, 2]) == ""
    standard = QueuePolicy.for_step(steps.add(EventStep(name="Plain", subscribes=["t"]), handler))
    assert standard.message_group({"userId": 7}) is None


def test_claim_clears_enqueued_at(steps):
    """A claim spends the job that woke the delivery: enqueued_at becomes None."""
    add_fifo(steps)
    delivery = emit({"userId": "u1"})
    Delivery.objects.filter(pk=delivery.pk).update(enqueued_at=timezone.now())
    claimed, _ = deliveries.claim(delivery.pk)
    assert claimed.enqueued_at is None
    assert Delivery.objects.get(pk=delivery.pk).enqueued_at is None


def test_success_wakes_the_next_pending_delivery_of_the_group_after_commit(
    steps, enqueued, django_capture_on_commit_callbacks
):
    """complete() wakes only the next pending delivery of the group, once it commits."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    emit({"userId": "u1"})  # third: waits for the second
    emit({"userId": "u2"})  # another group
    delivery, run = deliveries.claim(first.pk)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        deliveries.complete(delivery, run, lambda: None)
        assert enqueued == []  # not before the commit
    assert callbacks
    assert enqueued == [second.pk]
    assert Delivery.objects.get(pk=second.pk).enqueued_at is not None


def test_a_dead_delivery_wakes_the_next_pending_delivery_of_the_group(
    steps, enqueued, django_capture_on_commit_callbacks
):
    """fail() that makes a delivery dead wakes the next pending delivery of its group."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    second = emit({"userId": "u1"})
    delivery, run = deliveries.claim(first.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries.fail(delivery, run, "boom", retry=False) == Status.DEAD
    assert enqueued == [second.pk]
    assert Delivery.objects.get(pk=second.pk).enqueued_at is not None


def test_a_failure_that_will_be_retried_wakes_nobody(
    steps, enqueued, django_capture_on_commit_callbacks
):
    """A delivery pending its retry still holds the group: nothing is woken."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    emit({"userId": "u1"})
    delivery, run = deliveries.claim(first.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries.fail(delivery, run, "boom") == Status.PENDING
    assert enqueued == []


def test_a_next_delivery_not_due_yet_is_left_to_the_sweeper(
    steps, enqueued, django_capture_on_commit_callbacks
):
    """The next delivery of the group, emitted with a delay, gets no early job or mark."""
    add_fifo(steps)
    first = emit({"userId": "u1"})
    later = emit({"userId": "u1"}, delay=30)
    assert later.due_at > timezone.now() + timedelta(seconds=20)
    delivery, run = deliveries.claim(first.pk)
    with django_capture_on_commit_callbacks(execute=True):
        deliveries.complete(delivery, run, lambda: None)
    assert enqueued == []
    assert Delivery.objects.get(pk=later.pk).enqueued_at is None


def test_a_standard_step_wakes_nobody_when_a_delivery_finishes(
    steps, enqueued, django_capture_on_commit_callbacks
):
    """Finishing a standard step's delivery sends no wake-up for the others."""
    steps.add(EventStep(name="Plain", subscribes=["msg"]), handler)
    first = emit({"userId": "u1"})
    emit({"userId": "u1"})
    delivery, run = deliveries.claim(first.pk)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        deliveries.complete(delivery, run, lambda: None)
    assert callbacks == []
    assert enqueued == []


def test_the_sweeper_skips_fifo_deliveries_waiting_their_turn(steps, enqueued):
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
