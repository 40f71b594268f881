"""Joins: a step that runs once when all its topics arrived for one key, with their
data; a timeout, a late or a duplicate arrival handed to its on_timeout topic; exactly
one run when arrivals race. Marked ``store``: these run on PostgreSQL too."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from workflow import bus, joins, runner
from workflow.models import Delivery, JoinState
from workflow.steps import EventStep, StepConfigError
from workflow.testing import FlowTester

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.store]
TOPICS = ["flight.reserved", "hotel.reserved", "car.reserved"]
JOIN = {"key": "bookingId", "timeout": 30, "on_timeout": "booking.join_timed_out"}


@pytest.fixture
def trip(steps):
    """Confirm joins the three reservations by bookingId; Compensate takes what the
    join hands to its timeout topic. Each records what it was called with."""
    calls = {"Confirm": [], "Compensate": []}
    lock = threading.Lock()

    def confirm(input, ctx):
        with lock:
            calls["Confirm"].append(input)
        if input["flight.reserved"].get("fail_once") and len(calls["Confirm"]) == 1:
            raise RuntimeError("the first try fails")
        ctx.emit("booking.confirmed", {"bookingId": input["car.reserved"]["bookingId"]})

    def compensate(input, ctx):
        calls["Compensate"].append(input)

    steps.add(
        EventStep(name="Confirm", subscribes=TOPICS, join=JOIN, emits=["booking.confirmed"]),
        confirm,
    )
    steps.add(EventStep(name="Compensate", subscribes=["booking.join_timed_out"]), compensate)
    steps.add(EventStep(name="Audit", subscribes=["booking.confirmed"]), lambda input, ctx: None)
    return calls


def emit_all(flow, booking, topics=TOPICS, trace=None, **extra):
    trace = trace or f"{booking:0>32}"[-32:]
    for topic in topics:
        flow.emit(
            topic,
            {"bookingId": booking, "reservationId": f"{topic[:3]}-{booking}", **extra},
            trace_id=trace,
        )


def test_the_join_runs_once_with_each_topics_data_when_the_last_arrives(trip):
    flow = FlowTester(sleep=False)
    emit_all(flow, "b1", TOPICS[:2])
    assert trip["Confirm"] == []
    waiting = [line for line in flow.lines if line.message == "Join waiting"]
    assert [line.fields["missing"] for line in waiting] == [TOPICS[1:], TOPICS[2:]]
    emit_all(flow, "b1", TOPICS[2:])
    assert trip["Confirm"] == [
        {topic: {"bookingId": "b1", "reservationId": f"{topic[:3]}-b1"} for topic in TOPICS}
    ]
    assert flow.emitted("booking.confirmed") == [{"bookingId": "b1"}]
    assert set(Delivery.objects.filter(step_name="Confirm").values_list("status", flat=True)) == {
        "succeeded"
    }
    state = JoinState.objects.get()
    assert (state.key, state.status) == ('"b1"', "fired")


def test_keys_are_joined_apart(trip):
    flow = FlowTester(sleep=False)
    emit_all(flow, "b1", TOPICS[:1])
    emit_all(flow, "b2", TOPICS)
    emit_all(flow, "b1", TOPICS[1:])
    assert [call["flight.reserved"]["bookingId"] for call in trip["Confirm"]] == ["b2", "b1"]


def test_long_keys_that_share_their_start_are_joined_apart(trip):
    """A key longer than its column is stored as its start and a digest of the whole:
    two bookings whose ids start the same do not make one join of mixed parts."""
    flow = FlowTester(sleep=False)
    one, other = "b" * 300 + "1", "b" * 300 + "2"
    emit_all(flow, one, TOPICS[:2])
    emit_all(flow, other, TOPICS[2:])
    assert trip["Confirm"] == [] and trip["Compensate"] == []
    emit_all(flow, other, TOPICS[:2])
    emit_all(flow, one, TOPICS[2:])
    assert [call["car.reserved"]["bookingId"] for call in trip["Confirm"]] == [other, one]
    assert all(len(set(call[t]["bookingId"] for t in TOPICS)) == 1 for call in trip["Confirm"])
    keys = JoinState.objects.values_list("key", flat=True)
    assert len(set(keys)) == 2
    assert all(len(key) == JoinState._meta.get_field("key").max_length for key in keys)


def test_a_duplicate_arrival_goes_to_the_timeout_topic_not_the_handler(trip):
    flow = FlowTester(sleep=False)
    emit_all(flow, "b1", TOPICS[:1])
    emit_all(flow, "b1", TOPICS[:1])  # a second flight.reserved while the join is open
    emit_all(flow, "b1", TOPICS[1:])
    emit_all(flow, "b1", TOPICS[2:])  # a car.reserved after the join ran
    assert len(trip["Confirm"]) == 1
    assert [(c["reason"], c["topic"], c["status"]) for c in trip["Compensate"]] == [
        ("duplicate", "flight.reserved", "open"),
        ("duplicate", "car.reserved", "fired"),  # a second car.reserved, after the run
    ]
    assert trip["Compensate"][1]["value"] == "b1" and trip["Compensate"][1]["join"] == "Confirm"


def test_a_join_past_its_timeout_hands_what_it_received_to_its_timeout_topic_once(trip):
    flow = FlowTester(sleep=False)
    emit_all(flow, "b1", TOPICS[:2])
    later = timezone.now() + timedelta(seconds=31)
    from workflow.registry import registry

    assert joins.expire(registry, timezone.now()) == 0  # not yet
    assert joins.expire(registry, later) == 1
    assert joins.expire(registry, later) == 0  # once
    flow.run_until_quiet()
    [timeout] = trip["Compensate"]
    assert timeout["reason"] == "timeout" and timeout["missing"] == ["car.reserved"]
    assert set(timeout["received"]) == set(TOPICS[:2]) and timeout["value"] == "b1"
    event = bus_event("booking.join_timed_out")
    assert (event.emitted_by, event.trace_id) == ("Confirm", f"{'b1':0>32}")
    emit_all(flow, "b1", TOPICS[2:])  # the last one, too late
    assert trip["Confirm"] == []
    assert [c["reason"] for c in trip["Compensate"]] == ["timeout", "late"]


def bus_event(topic):
    from workflow.models import Event

    return Event.objects.get(topic=topic)


def test_an_arrival_without_the_key_is_a_dead_letter_saying_so(trip):
    flow = FlowTester(sleep=False)
    flow.emit("flight.reserved", {"reservationId": "f-1"})
    delivery = Delivery.objects.get(step_name="Confirm")
    assert delivery.status == "dead"
    assert "Confirm joins by 'bookingId', which this event's data lacks" in delivery.last_error


def test_the_completing_arrivals_retry_runs_the_handler_again_and_no_other(trip):
    flow = FlowTester(sleep=False)
    emit_all(flow, "b1", TOPICS, fail_once=True)
    assert len(trip["Confirm"]) == 2  # the failed try, then its retry
    assert flow.emitted("booking.confirmed") == [{"bookingId": "b1"}]
    runs = Delivery.objects.filter(step_name="Confirm").values_list("attempts", flat=True)
    assert sorted(runs) == [1, 1, 2]


def test_arrivals_racing_on_threads_make_exactly_one_run_per_key(trip):
    """Each key's three deliveries run at once on three threads (their own database
    connections): one run of the handler per key, whatever the order."""
    for n in range(6):
        for topic in TOPICS:
            bus.emit(topic, {"bookingId": f"k{n}"}, trace_id=f"{n:032x}")
    ids = list(
        Delivery.objects.filter(step_name="Confirm").order_by("pk").values_list("pk", flat=True)
    )
    errors = []

    def run(delivery_id):
        try:
            runner.run_delivery(delivery_id, worker="racer")
        except Exception as exc:  # pragma: no cover (reported below)
            errors.append(exc)
        finally:
            connection.close()

    for n in range(6):
        threads = [threading.Thread(target=run, args=(pk,)) for pk in ids[n * 3 : n * 3 + 3]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    keys = sorted(call["car.reserved"]["bookingId"] for call in trip["Confirm"])
    assert keys == [f"k{n}" for n in range(6)]
    assert set(JoinState.objects.values_list("status", flat=True)) == {"fired"}


@pytest.mark.parametrize(
    "join, subscribes, message",
    [
        ({"key": "bookingId"}, TOPICS, "join needs 'on_timeout'"),
        ({"on_timeout": "t.out"}, TOPICS, "join needs a 'key'"),
        ({**JOIN, "timeout": 0}, TOPICS, "join 'timeout' is a number of seconds above 0"),
        ({**JOIN, "wait": 3}, TOPICS, "join has unknown keys \\['wait'\\]"),
        (JOIN, TOPICS[:1], "a join waits for two or more topics"),
        (JOIN, ["flight.*", "hotel.reserved"], "a join waits for two or more topics"),
        ({**JOIN, "on_timeout": "t.*"}, TOPICS, "is a pattern"),
        ("bookingId", TOPICS, "join is a dict"),
    ],
)
def test_a_join_that_cannot_work_is_refused_with_the_fix(join, subscribes, message):
    with pytest.raises(StepConfigError, match=message):
        EventStep(name="Confirm", subscribes=subscribes, join=join)


def test_the_timeout_topic_is_among_the_steps_emits():
    step = EventStep(name="Confirm", subscribes=TOPICS, join=JOIN, emits=["booking.confirmed"])
    assert [emit.topic for emit in step.emits] == ["booking.confirmed", "booking.join_timed_out"]


def test_the_join_is_drawn_in_the_flow_and_described_in_the_workbench(steps):
    """manage.py flows and the workbench's card say which key joins, within how long;
    the panel names the topics and the timeout topic; edges come in from each topic."""
    from io import StringIO

    from django.core.management import call_command

    from workbench import describe, graph
    from workflow.registry import registry

    steps.add(
        EventStep(name="Confirm", subscribes=TOPICS, join=JOIN, flows=["trip"]), lambda i, c: None
    )
    steps.add(
        EventStep(name="Release", subscribes=["booking.join_timed_out"], flows=["trip"]),
        lambda i, c: None,
    )
    out = StringIO()
    call_command("flows", "--flow", "trip", stdout=out)
    text = out.getvalue()
    assert "  Confirm [event] joins by bookingId within 30 s" in text
    assert "    --booking.join_timed_out--> Release [timeout]" in text
    assert describe.step_detail(registry.get("Confirm"))["join"] == (
        "flight.reserved + hotel.reserved + car.reserved by bookingId, within 30 s, "
        "else booking.join_timed_out"
    )
    drawing = graph.drawing("trip")
    card = next(node for node in drawing["nodes"] if node.id == "Confirm")
    assert card.subtitle == "joins by bookingId within 30 s"
