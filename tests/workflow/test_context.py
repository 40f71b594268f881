"""The handler context: declared emits, emit forms, JSON data, held vs direct writes."""

import datetime
import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from workflow import InvalidEmit, NonRetryable
from workflow.context import Context, EmitTooDeep, TraceTooLarge, UndeclaredEmit
from workflow.models import Delivery, Event, StateEntry
from workflow.steps import EventStep

TRACE = "0123456789abcdef0123456789abcdef"


def handler(input, ctx):
    return None


@pytest.fixture
def emitter(steps):
    """A registered step that emits 'order.placed', and a subscriber to it."""
    step = steps.add(
        EventStep(name="PlaceOrder", subscribes=["cart.checked_out"], emits=["order.placed"]),
        handler,
        "shop.steps.place_order_step",
        "shop/steps/place_order_step.py",
    )
    steps.add(EventStep(name="ShipOrder", subscribes=["order.placed"]), handler)
    return step


def test_context_exposes_trace_id_and_flows(steps):
    """ctx.trace_id is the run's trace id and ctx.flows lists the step's flows."""
    step = steps.add(EventStep(name="S", subscribes=["t"], flows=["shop"]), handler)
    ctx = Context(step, TRACE, held=True)
    assert ctx.trace_id == TRACE
    assert ctx.flows == ["shop"]


def test_undeclared_emit_names_step_file_and_topic(emitter):
    """Emitting a topic missing from emits raises UndeclaredEmit with step, file, topic."""
    ctx = Context(emitter, TRACE, held=True)
    with pytest.raises(UndeclaredEmit) as info:
        ctx.emit("order.cancelled", {"id": 1})
    message = str(info.value)
    assert "'PlaceOrder'" in message
    assert "shop/steps/place_order_step.py" in message
    assert "'order.cancelled'" in message
    assert "add 'order.cancelled' to config.emits" in message


def test_undeclared_emit_in_dict_form_is_refused(emitter):
    """The dict form is checked against emits too."""
    ctx = Context(emitter, TRACE, held=True)
    with pytest.raises(UndeclaredEmit):
        ctx.emit({"topic": "order.cancelled", "data": {}})


@pytest.mark.django_db
def test_emit_topic_and_data_records_event_with_deliveries(emitter):
    """emit('topic', data) records the event, its trace and emitter, and a delivery."""
    ctx = Context(emitter, TRACE, held=False)
    ctx.emit("order.placed", {"orderId": 7})
    event = Event.objects.get()
    assert (event.topic, event.data) == ("order.placed", {"orderId": 7})
    assert (event.trace_id, event.emitted_by) == (TRACE, "PlaceOrder")
    assert [d.step_name for d in Delivery.objects.filter(event=event)] == ["ShipOrder"]


@pytest.mark.django_db
def test_emit_accepts_a_topic_data_dict(emitter):
    """emit({'topic': ..., 'data': ...}) is the same as emit(topic, data)."""
    ctx = Context(emitter, TRACE, held=False)
    ctx.emit({"topic": "order.placed", "data": {"orderId": 8}})
    event = Event.objects.get()
    assert (event.topic, event.data) == ("order.placed", {"orderId": 8})


@pytest.mark.django_db
def test_emit_without_data_sends_an_empty_object(emitter):
    """emit('topic') sends {} as the data."""
    Context(emitter, TRACE, held=False).emit("order.placed")
    assert Event.objects.get().data == {}


def test_emit_dict_with_unknown_keys_is_a_type_error(emitter):
    """A dict with keys other than topic/data/delay is refused, showing both forms."""
    ctx = Context(emitter, TRACE, held=True)
    with pytest.raises(TypeError, match=r'emit takes \("topic", data\)'):
        ctx.emit({"topic": "order.placed", "payload": {}})
    with pytest.raises(TypeError):
        ctx.emit({"data": {}})


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [{"when": datetime.datetime(2024, 1, 1)}, {"ids": {1, 2}}, {"x": float("nan")}, object()],
)
def test_non_json_data_is_a_type_error(emitter, data):
    """Data that is not plain JSON raises TypeError naming the topic, and nothing is sent."""
    ctx = Context(emitter, TRACE, held=True)
    with pytest.raises(TypeError, match="data emitted on 'order.placed' must be JSON"):
        ctx.emit("order.placed", data)
    ctx.commit()
    assert Event.objects.count() == 0


class Order(serializers.Serializer):
    orderId = serializers.IntegerField()


@pytest.mark.django_db
@pytest.mark.parametrize("held", [True, False])
def test_an_emit_a_subscriber_refuses_raises_at_once(steps, emitter, held):
    """In an API step's context (writing through) as in a background attempt's (held),
    ctx.emit raises InvalidEmit at the emit, naming the step, topic, subscriber and field;
    nothing is held or sent."""
    steps.add(EventStep(name="Bill", subscribes=["order.placed"], input=Order), handler)
    ctx = Context(emitter, TRACE, held=held)
    with pytest.raises(InvalidEmit) as info:
        ctx.emit("order.placed", {"orderId": "seven"})
    assert str(info.value).startswith("PlaceOrder's emit of 'order.placed' was refused")
    assert 'the input of Bill (Order) says {"orderId": ["A valid integer is required."]}' in (
        str(info.value)
    )
    assert not ctx.holds_writes()
    ctx.commit()
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_emitted_data_is_a_copy(emitter):
    """Changing the data after emit does not change what was emitted."""
    ctx = Context(emitter, TRACE, held=True)
    data = {"items": [1]}
    ctx.emit("order.placed", data)
    data["items"].append(2)
    ctx.commit()
    assert Event.objects.get().data == {"items": [1]}


@pytest.mark.django_db
def test_held_context_writes_nothing_until_commit(emitter):
    """A held context keeps state writes and emits in memory until commit()."""
    ctx = Context(emitter, TRACE, held=True)
    ctx.state.set("orders", "7", {"status": "placed"})
    ctx.emit("order.placed", {"orderId": 7})
    assert ctx.state.get("orders", "7") == {"status": "placed"}
    assert StateEntry.objects.count() == 0
    assert Event.objects.count() == 0
    assert Delivery.objects.count() == 0

    ctx.commit()
    assert StateEntry.objects.get(group="orders", key="7").value == {"status": "placed"}
    event = Event.objects.get()
    assert (event.topic, event.data, event.trace_id) == ("order.placed", {"orderId": 7}, TRACE)
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
def test_a_held_commit_rolled_back_sends_its_emits_again_in_the_next_transaction(emitter):
    """commit() in a transaction that rolls back, then again: each held emit and state
    write lands once, in the second transaction (the recorder's retry)."""
    ctx = Context(emitter, TRACE, held=True)
    ctx.emit("order.placed", {"orderId": 1})
    ctx.emit("order.placed", {"orderId": 2})
    ctx.state.set("orders", "1", "placed")
    with pytest.raises(RuntimeError), transaction.atomic():
        ctx.commit()
        raise RuntimeError("the recorder's transaction failed")
    assert not Event.objects.exists() and not StateEntry.objects.exists()
    ctx.commit()
    assert sorted(e.data["orderId"] for e in Event.objects.all()) == [1, 2]
    assert StateEntry.objects.get(group="orders", key="1").value == "placed"


@pytest.mark.django_db
def test_direct_context_writes_at_once(emitter):
    """A direct (held=False) context writes state and records emits immediately."""
    ctx = Context(emitter, TRACE, held=False)
    ctx.state.set("orders", "7", {"status": "placed"})
    assert StateEntry.objects.get(group="orders", key="7").value == {"status": "placed"}
    ctx.emit("order.placed", {"orderId": 7})
    assert Event.objects.filter(topic="order.placed").count() == 1
    assert Delivery.objects.count() == 1


# Depth ---------------------------------------------------------------------------------


@pytest.fixture
def looping(steps):
    """Two steps that emit to each other: Ping ('ping' -> 'pong') and Pong ('pong' -> 'ping')."""
    ping = steps.add(EventStep(name="Ping", subscribes=["ping"], emits=["pong"]), handler)
    pong = steps.add(EventStep(name="Pong", subscribes=["pong"], emits=["ping"]), handler)
    return ping, pong


def chain(ping, pong, depth):
    """Events of one trace alternating Ping's and Pong's emits, down to ``depth``; the last."""
    event = None
    for n in range(depth + 1):
        step = (ping, pong)[n % 2]
        topic = "pong" if step is ping else "ping"
        event = Event.objects.create(
            topic=topic, data={}, trace_id=TRACE, emitted_by=step.name, depth=n, caused_by=event
        )
    return event


@pytest.mark.django_db
def test_an_emit_is_one_deeper_than_the_event_it_handles(looping):
    """A background attempt's emit: depth one more than its event's, caused by it."""
    ping, pong = looping
    handled = chain(ping, pong, 3)  # depth 3: Pong's emit of 'ping', which Ping handles
    ctx = Context(ping, TRACE, held=False, event=handled)
    ctx.emit("pong", {})
    emitted = Event.objects.filter(topic="pong").order_by("-pk").first()
    assert (emitted.depth, emitted.caused_by_id) == (4, handled.pk)


@pytest.mark.django_db
def test_an_emit_past_max_depth_fails_naming_the_cycle(looping, settings):
    """With MAX_DEPTH 5, an emit at depth 6 raises EmitTooDeep (a NonRetryable) naming
    the steps that keep emitting to each other, and nothing is emitted."""
    settings.WORKFLOW = {**settings.WORKFLOW, "MAX_DEPTH": 5}
    ping, pong = looping
    handled = chain(ping, pong, 5)
    before = Event.objects.count()
    ctx = Context(pong if handled.emitted_by == "Ping" else ping, TRACE, held=True, event=handled)
    with pytest.raises(EmitTooDeep) as info:
        ctx.emit("ping" if ctx.step is pong else "pong", {})
    message = str(info.value)
    assert isinstance(info.value, NonRetryable)
    assert "at depth 6" in message and "WORKFLOW['MAX_DEPTH'] (5)" in message
    assert "form a cycle (topics 'ping', 'pong')" in message
    assert re.search(r"the steps (Ping -> Pong -> Ping|Pong -> Ping -> Pong) form", message)
    assert Event.objects.count() == before


def test_emits_of_api_steps_and_cron_slots_start_at_depth_zero(steps, settings):
    """A context without an event (an API call, a cron slot) emits at depth 0, even with
    MAX_DEPTH 0."""
    settings.WORKFLOW = {**settings.WORKFLOW, "MAX_DEPTH": 0}
    step = steps.add(EventStep(name="S", subscribes=["t"], emits=["u"]), handler)
    ctx = Context(step, TRACE, held=True)
    ctx.emit("u", {})  # no error
    assert ctx.holds_writes()


@pytest.mark.django_db
def test_a_cycle_that_fans_out_stops_at_max_trace_events(looping, settings):
    """An emit 2 or more deep fails with TraceTooLarge (a NonRetryable) once its trace
    holds MAX_TRACE_EVENTS events, counting the attempt's own held emits, naming the
    cycle; the trace is counted once per attempt."""
    settings.WORKFLOW = {**settings.WORKFLOW, "MAX_TRACE_EVENTS": 8}
    ping, pong = looping
    handled = chain(ping, pong, 4)  # 5 events in the trace
    step = pong if handled.emitted_by == "Ping" else ping
    topic = "ping" if step is pong else "pong"
    ctx = Context(step, TRACE, held=True, event=handled)
    with CaptureQueriesContext(connection) as counted:
        for _ in range(3):  # 5 + 3 = 8
            ctx.emit(topic, {})
    assert sum("COUNT(" in query["sql"] for query in counted.captured_queries) == 1
    with pytest.raises(TraceTooLarge) as info:
        ctx.emit(topic, {})
    message = str(info.value)
    assert isinstance(info.value, NonRetryable)
    assert "would hold 9 events, more than WORKFLOW['MAX_TRACE_EVENTS'] (8)" in message
    assert "form a cycle (topics 'ping', 'pong')" in message


@pytest.mark.django_db
def test_shallow_emits_are_not_counted_against_max_trace_events(looping, settings):
    """An API call's or a cron slot's emits (depth 0) and their handlers' (depth 1) fan
    out as far as they need: only emits 2 or more deep count the trace."""
    settings.WORKFLOW = {**settings.WORKFLOW, "MAX_TRACE_EVENTS": 2}
    ping, pong = looping
    handled = chain(ping, pong, 0)  # depth 0: its handler emits at depth 1
    step = pong if handled.emitted_by == "Ping" else ping
    topic = "ping" if step is pong else "pong"
    ctx = Context(step, TRACE, held=False, event=handled)
    with CaptureQueriesContext(connection) as counted:
        for _ in range(5):
            ctx.emit(topic, {})
    assert not any("COUNT(" in query["sql"] for query in counted.captured_queries)
    assert Event.objects.filter(trace_id=TRACE).count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_step_that_emits_twice_to_itself_stops_near_max_trace_events(steps, settings):
    """Split handles 'part' and emits two more: 2**MAX_DEPTH events without a bound. With
    MAX_TRACE_EVENTS 50 the trace stops at 49 (an attempt's two emits are all or
    nothing; run one at a time, none passes the limit), the runs past it dead with the
    cause."""
    from workflow.testing import FlowTester

    settings.WORKFLOW = {**settings.WORKFLOW, "MAX_TRACE_EVENTS": 50}

    def split(input, ctx):
        ctx.emit("part", {})
        ctx.emit("part", {})

    steps.add(EventStep(name="Split", subscribes=["part"], emits=["part"]), split)
    flow = FlowTester(sleep=False)
    flow.emit("part", {}, trace_id=TRACE)
    assert Event.objects.filter(trace_id=TRACE).count() == 49
    dead = flow.deliveries("Split", status="dead")
    assert dead and all("TraceTooLarge" in d.last_error for d in dead)
    assert all("MAX_TRACE_EVENTS" in d.last_error for d in dead)
    assert not flow.deliveries("Split", status="pending")
