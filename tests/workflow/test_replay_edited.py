"""replay_edited(): a dead letter replayed on edited data, a new event of the same topic
in the same trace, linked to the original, for that one step; or refused, recording
nothing."""

import pytest
from django.utils import timezone
from rest_framework import serializers

from workflow import bus
from workflow.errors import InvalidEmit, NotJSON
from workflow.models import Delivery, Event
from workflow.replay import NotReplayable, dead_letters, replay_edited
from workflow.steps import CronStep, EventStep

pytestmark = [pytest.mark.django_db, pytest.mark.store]
Status = Delivery.Status


class Order(serializers.Serializer):
    orderId = serializers.IntegerField(min_value=1)  # noqa: N815 (the JSON field's name)


def handler(input, ctx):
    pass


@pytest.fixture
def shop(steps):
    """Ship (its input: Order) and Bill, both subscribed to 'order.placed'."""
    steps.add(EventStep(name="Ship", subscribes=["order.placed"], input=Order), handler)
    steps.add(EventStep(name="Bill", subscribes=["order.placed"]), handler)
    return steps


def dead_ship():
    """Ship's delivery of a placed order, dead (as after its last attempt)."""
    event = bus.emit("order.placed", {"orderId": 1}, emitted_by="PlaceOrder")
    delivery = Delivery.objects.get(event=event, step_name="Ship")
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Status.DEAD, attempts=3, finished_at=timezone.now(), last_error="boom"
    )
    delivery.refresh_from_db()
    return delivery


def test_an_edited_replay_is_a_new_event_in_the_same_trace_for_that_step_only(shop):
    dead = dead_ship()
    original = dead.event
    again = replay_edited(dead, {"orderId": 2, "note": "fixed by hand"})
    edited = again.event
    assert (edited.topic, edited.data) == ("order.placed", {"orderId": 2, "note": "fixed by hand"})
    assert (edited.trace_id, edited.emitted_by, edited.edited_from) == (
        original.trace_id,
        "PlaceOrder",
        original,
    )
    assert (again.step_name, again.status, again.replay_of, again.trace_id) == (
        "Ship",
        Status.PENDING,
        dead,
        dead.trace_id,
    )
    assert list(edited.deliveries.all()) == [again]  # Bill is not run again
    original.refresh_from_db()
    assert original.data == {"orderId": 1}  # the original stays as it was
    assert not dead_letters("Ship").exists()  # the dead letter counts as replayed


@pytest.mark.parametrize(
    "data, error, message",
    [
        (
            {"orderId": 0},
            InvalidEmit,
            r"Ship's input \(Order\) refuses the edited data: .*greater than or equal to 1",
        ),
        ({}, InvalidEmit, '"orderId": \\["This field is required."\\]'),
        ({"orderId": {1, 2}}, NotJSON, "the edited data of delivery"),
    ],
)
def test_data_the_steps_input_refuses_is_refused_and_nothing_is_recorded(
    shop, data, error, message
):
    dead = dead_ship()
    with pytest.raises(error, match=message):
        replay_edited(dead, data)
    assert Event.objects.count() == 1 and Delivery.objects.count() == 2


def test_an_unfinished_or_already_replayed_delivery_is_refused_and_nothing_is_recorded(shop):
    dead = dead_ship()
    replay_edited(dead, {"orderId": 2})
    with pytest.raises(NotReplayable, match="was already replayed"):
        replay_edited(dead, {"orderId": 3})
    bill = Delivery.objects.get(step_name="Bill")  # pending: not finished
    with pytest.raises(NotReplayable, match="is pending; only succeeded or dead"):
        replay_edited(bill, {"orderId": 3})
    assert Event.objects.count() == 2  # the original and the one edited replay


def test_a_cron_slot_has_no_data_to_edit(steps):
    steps.add(CronStep(name="Nightly", cron="0 3 * * *"), lambda ctx: None)
    slot = Delivery.objects.create(
        step_name="Nightly", trace_id="c" * 32, status=Status.DEAD, cron_slot=timezone.now()
    )
    with pytest.raises(NotReplayable, match="is a cron slot: it has no event data to edit"):
        replay_edited(slot, {})
