"""emit(..., idempotency_key=k): a topic is delivered once per key, however often emitted."""

import pytest
from django.db import transaction
from django.db.models import QuerySet

from workflow import bus
from workflow.context import Context
from workflow.models import Delivery, Event, Run
from workflow.replay import replay
from workflow.runner import run_delivery
from workflow.steps import EventStep

pytestmark = pytest.mark.store  # the store's path: run on PostgreSQL too

TRACE = "0123456789abcdef0123456789abcdef"


def handler(input, ctx):
    pass


def subscribe(steps, name, *topics):
    steps.add(EventStep(name=name, subscribes=list(topics)), handler)


@pytest.fixture
def emitter(steps):
    """A step that may emit 'order.placed', which two steps subscribe to."""
    step = steps.add(
        EventStep(name="PlaceOrder", subscribes=["cart.checked_out"], emits=["order.placed"]),
        handler,
    )
    subscribe(steps, "ShipOrder", "order.placed")
    subscribe(steps, "BillOrder", "order.placed")
    return step


@pytest.mark.django_db
def test_a_second_emit_with_the_same_key_returns_the_first_event(
    steps, enqueued, django_capture_on_commit_callbacks
):
    """The same topic and key twice: one event, one set of deliveries, one set of jobs."""
    subscribe(steps, "A", "t")
    subscribe(steps, "B", "t")
    with django_capture_on_commit_callbacks(execute=True):
        first = bus.emit("t", {"n": 1}, idempotency_key="order-7")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = bus.emit("t", {"n": 2}, idempotency_key="order-7")
    assert second.pk == first.pk
    assert second.data == {"n": 1}
    assert callbacks == []
    assert Event.objects.count() == 1
    assert Event.objects.get().idempotency_key == "order-7"
    ids = sorted(Delivery.objects.values_list("pk", flat=True))
    assert len(ids) == 2
    assert sorted(enqueued) == ids


@pytest.mark.django_db
def test_the_same_key_on_another_topic_is_another_event(steps):
    """A key is per topic: two topics emitted with the same key are two events."""
    subscribe(steps, "A", "t1")
    subscribe(steps, "B", "t2")
    one = bus.emit("t1", {}, idempotency_key="k")
    two = bus.emit("t2", {}, idempotency_key="k")
    assert one.pk != two.pk
    assert Delivery.objects.get(event=one).step_name == "A"
    assert Delivery.objects.get(event=two).step_name == "B"


@pytest.mark.django_db
def test_another_key_is_another_event(steps):
    """Two keys on one topic are two events, each delivered."""
    subscribe(steps, "A", "t")
    one = bus.emit("t", {}, idempotency_key="k1")
    two = bus.emit("t", {}, idempotency_key="k2")
    assert one.pk != two.pk
    assert Delivery.objects.count() == 2


@pytest.mark.django_db
def test_a_key_is_compared_as_a_string(steps):
    """A non-string key is stored as its string: 5 and "5" are the same key."""
    subscribe(steps, "A", "t")
    first = bus.emit("t", {}, idempotency_key=5)
    assert bus.emit("t", {}, idempotency_key="5").pk == first.pk
    assert Event.objects.get().idempotency_key == "5"


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "k" * 201])
def test_a_bad_key_raises_value_error_and_records_nothing(steps, key):
    """A key must be 1 to 200 characters; otherwise ValueError and no event."""
    subscribe(steps, "A", "t")
    with pytest.raises(ValueError, match="1 to 200 characters"):
        bus.emit("t", {}, idempotency_key=key)
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_a_key_of_200_characters_is_accepted(steps):
    """The longest key, 200 characters, is stored as given."""
    subscribe(steps, "A", "t")
    bus.emit("t", {}, idempotency_key="k" * 200)
    assert Event.objects.get().idempotency_key == "k" * 200


@pytest.mark.django_db
def test_losing_the_race_for_a_key_returns_the_winner_and_keeps_the_transaction(steps, monkeypatch):
    """An emit whose key was taken between its look-up and its insert returns the winner's
    event, and the caller's transaction goes on (the insert failed in a savepoint)."""
    subscribe(steps, "A", "t")
    with transaction.atomic():
        winner = bus.emit("t", {}, idempotency_key="k")
        monkeypatch.setattr(QuerySet, "first", lambda self: None)  # the look-up misses
        loser = bus.emit("t", {}, idempotency_key="k")
        monkeypatch.undo()
        assert loser.pk == winner.pk
        assert Delivery.objects.count() == 1  # still usable, nothing more delivered
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_the_dict_form_passes_the_idempotency_key_through(emitter):
    """ctx.emit({'topic', 'data', 'idempotency_key'}) is delivered once per key."""
    ctx = Context(emitter, TRACE, held=False)
    message = {"topic": "order.placed", "data": {"orderId": 1}, "idempotency_key": "o-1"}
    ctx.emit(message)
    ctx.emit(message)
    event = Event.objects.get()
    assert (event.idempotency_key, event.data) == ("o-1", {"orderId": 1})
    assert Delivery.objects.filter(event=event).count() == 2


@pytest.mark.django_db
def test_the_dict_form_passes_the_delay_through(emitter):
    """ctx.emit({'topic', 'data', 'delay'}) delays the deliveries like the keyword does."""
    ctx = Context(emitter, TRACE, held=False)
    ctx.emit({"topic": "order.placed", "data": {}, "delay": 60})
    event = Event.objects.get()
    for delivery in Delivery.objects.filter(event=event):
        assert (delivery.due_at - event.created_at).total_seconds() == pytest.approx(60, abs=1)


@pytest.mark.django_db
def test_the_keyword_form_passes_the_idempotency_key_through(emitter):
    """ctx.emit(topic, data, idempotency_key=k) twice records one event."""
    ctx = Context(emitter, TRACE, held=False)
    ctx.emit("order.placed", {"orderId": 1}, idempotency_key="o-1")
    ctx.emit("order.placed", {"orderId": 1}, idempotency_key="o-1")
    assert Event.objects.get().idempotency_key == "o-1"
    assert Delivery.objects.count() == 2


@pytest.mark.django_db
def test_a_held_context_delivers_once_when_two_attempts_commit(emitter):
    """Two held attempts emitting with one key: nothing before commit, one event after both."""
    attempts = [Context(emitter, TRACE, held=True) for _ in range(2)]
    for ctx in attempts:
        ctx.emit("order.placed", {"orderId": 3}, idempotency_key="o-3")
    assert not Event.objects.exists()  # held until commit
    for ctx in attempts:
        ctx.commit()
    event = Event.objects.get()
    assert (event.idempotency_key, event.trace_id, event.emitted_by) == (
        "o-3",
        TRACE,
        "PlaceOrder",
    )
    assert Delivery.objects.filter(event=event).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_replayed_handler_emitting_with_a_key_does_not_deliver_again(steps, enqueued):
    """Replaying a delivery whose handler emits with an idempotency key delivers that emit once."""

    def place(input, ctx):
        ctx.emit("order.placed", {"orderId": input["orderId"]}, idempotency_key="o-9")

    steps.add(
        EventStep(name="PlaceOrder", subscribes=["cart.checked_out"], emits=["order.placed"]),
        place,
    )
    subscribe(steps, "ShipOrder", "order.placed")
    original = Delivery.objects.get(event=bus.emit("cart.checked_out", {"orderId": 9}))
    assert run_delivery(original.pk) == Run.Status.SUCCEEDED
    again = replay(Delivery.objects.get(pk=original.pk))
    assert run_delivery(again.pk) == Run.Status.SUCCEEDED
    assert Event.objects.filter(topic="order.placed").count() == 1
    assert Delivery.objects.filter(step_name="ShipOrder").count() == 1
