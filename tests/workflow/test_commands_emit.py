"""``manage.py emit``: an event from the shell, delivered to every subscriber."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework import serializers

from workflow.models import Delivery, Event, Trace
from workflow.registry import Problem
from workflow.steps import EventStep

pytestmark = pytest.mark.django_db


def handler(input, ctx):
    pass


@pytest.fixture
def shop(steps):
    """Ship and Bill subscribe to 'order.placed'."""
    steps.add(EventStep(name="Ship", subscribes=["order.placed"]), handler)
    steps.add(EventStep(name="Bill", subscribes=["order.placed"]), handler)
    return steps


def emit(*args):
    out = StringIO()
    call_command("emit", *args, stdout=out)
    return out.getvalue()


def test_emit_records_the_event_and_one_delivery_per_subscriber(
    shop, enqueued, django_capture_on_commit_callbacks
):
    """The event holds the JSON data in a new trace; each subscriber gets a delivery,
    woken after commit; the output names the event, trace and deliveries."""
    with django_capture_on_commit_callbacks(execute=True):
        out = emit("order.placed", '{"orderId": 7, "items": ["a", "b"]}')
    event = Event.objects.get()
    assert (event.topic, event.data, event.emitted_by) == (
        "order.placed",
        {"orderId": 7, "items": ["a", "b"]},
        "",
    )
    assert Trace.objects.filter(trace_id=event.trace_id).exists()
    ship, bill = Delivery.objects.filter(event=event).order_by("pk")
    assert (ship.step_name, bill.step_name) == ("Ship", "Bill")
    assert enqueued == [ship.pk, bill.pk]
    assert out.splitlines() == [
        f"event {event.pk} on order.placed, trace {event.trace_id}",
        f"  delivery {ship.pk} to Ship",
        f"  delivery {bill.pk} to Bill",
    ]


def test_emit_in_a_given_trace(shop):
    """--trace puts the event (and its deliveries) in that trace."""
    emit("order.placed", "{}", "--trace", "4bf92f3577b34da6a3ce929d0e0e4736")
    event = Event.objects.get()
    assert event.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert {d.trace_id for d in event.deliveries.all()} == {event.trace_id}


def test_data_defaults_to_an_empty_object(shop):
    emit("order.placed")
    assert Event.objects.get().data == {}


def test_emit_with_a_delay_makes_the_deliveries_due_later(shop):
    """--delay 60: each delivery is due a minute after the emit, and says so."""
    out = emit("order.placed", "{}", "--delay", "60")
    event = Event.objects.get()
    for delivery in event.deliveries.all():
        assert delivery.due_at - event.created_at == timedelta(seconds=60)
    assert out.count(", due ") == 2


def test_a_topic_nobody_subscribes_to_is_recorded_and_said(shop):
    out = emit("order.cancelled", '{"orderId": 7}')
    assert Event.objects.get().topic == "order.cancelled"
    assert Delivery.objects.count() == 0
    assert out.splitlines()[-1] == "  no step subscribes to 'order.cancelled': nothing will run"


def test_an_idempotency_key_delivers_once(shop):
    """A second emit with the same key delivers nothing and says which event it was."""
    emit("order.placed", '{"orderId": 7}', "--idempotency-key", "order-7")
    out = emit("order.placed", '{"orderId": 7}', "--idempotency-key", "order-7")
    event = Event.objects.get()
    assert Delivery.objects.count() == 2
    assert out.startswith(f"already emitted with idempotency key 'order-7': event {event.pk} ")


@pytest.mark.parametrize(
    "data, message",
    [
        ("{orderId: 7}", "the data is not valid JSON \\(Expecting property name"),
        ("{'orderId': 7}", "the data is not valid JSON"),
        ('{"a": NaN}', "the data is not valid JSON \\(NaN is not JSON\\)"),
        ("", "the data is not valid JSON"),
    ],
)
def test_bad_json_is_a_clear_error_and_records_nothing(shop, data, message):
    """Data that is not JSON is refused with the parser's reason and an example."""
    with pytest.raises(CommandError, match=message) as error:
        emit("order.placed", data)
    assert """write e.g. '{"userId": "u1"}'""" in str(error.value)
    assert Event.objects.count() == 0


@pytest.mark.parametrize("trace", ["has space", "x" * 33, ""])
def test_a_bad_trace_id_is_refused(shop, trace):
    with pytest.raises(CommandError, match="is not a trace id"):
        emit("order.placed", "{}", "--trace", trace)
    assert Event.objects.count() == 0


def test_a_negative_delay_is_refused(shop):
    with pytest.raises(CommandError, match="--delay is a number of seconds >= 0"):
        emit("order.placed", "{}", "--delay", "-1")


def test_an_empty_topic_is_refused(shop):
    with pytest.raises(CommandError, match="emit needs a topic name"):
        emit("", "{}")


def test_emit_refuses_while_a_step_module_is_broken(shop):
    """A subscriber whose module did not load would miss the event: fix it first."""
    shop.problems.append(Problem("workflow.E003", "shop/x_step.py could not be loaded", "", ""))
    with pytest.raises(CommandError, match="fix the steps first .*could not be loaded"):
        emit("order.placed", "{}")
    assert Event.objects.count() == 0


class Order(serializers.Serializer):
    orderId = serializers.IntegerField()


@pytest.fixture
def billing(steps):
    """Bill subscribes to 'order.placed' with an input that requires orderId."""
    steps.add(EventStep(name="Bill", subscribes=["order.placed"], input=Order), handler)
    return steps


def test_data_a_subscriber_refuses_is_refused_at_once(billing):
    """Data a subscriber's input refuses is a CommandError naming the topic, the
    subscriber and the field, and saying --no-check; nothing is emitted."""
    with pytest.raises(CommandError) as info:
        emit("order.placed", '{"note": "x"}')
    message = str(info.value)
    assert "The emit of 'order.placed' (from outside any step) was refused" in message
    assert 'the input of Bill (Order) says {"orderId": ["This field is required."]}' in message
    assert message.endswith("(--no-check emits it anyway)")
    assert not Event.objects.exists()


def test_no_check_emits_data_a_subscriber_refuses(billing):
    """--no-check emits it anyway: its delivery is recorded (and fails when it runs)."""
    out = emit("order.placed", '{"note": "x"}', "--no-check")
    event = Event.objects.get()
    assert event.data == {"note": "x"}
    assert f"delivery {Delivery.objects.get(event=event).pk} to Bill" in out


def test_null_data_is_refused(shop):
    """'null' is no event's data: a CommandError saying to emit {}, and nothing emitted."""
    with pytest.raises(CommandError, match=r"is None; an event's data is JSON: emit \{\}"):
        emit("order.placed", "null")
    assert not Event.objects.exists()
