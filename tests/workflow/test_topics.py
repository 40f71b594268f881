"""Topic patterns: ``*`` for one segment, ``**`` for any depth, ``*`` alone for every
topic; in subscriptions, deliveries, checks and the graph."""

import pytest

from workflow import bus
from workflow.checks import check_topics
from workflow.graph import flow_graph
from workflow.models import Delivery
from workflow.steps import ApiStep, EventStep, StepConfigError
from workflow.topics import TopicError, example, matches


def nothing(input, ctx):
    return None


def api_handler(request, ctx):
    return {"status": 200, "body": {}}


@pytest.mark.parametrize(
    "pattern, topic, expected",
    [
        ("user.registered", "user.registered", True),
        ("user.registered", "user.registered.again", False),
        ("user.*", "user.registered", True),
        ("user.*", "user.email.sent", False),
        ("user.*", "user", False),
        ("*.registered", "user.registered", True),
        ("*.registered", "user.registered.late", False),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.b.b.c", False),
        ("user.**", "user", True),
        ("user.**", "user.registered", True),
        ("user.**", "user.email.sent", True),
        ("user.**", "users.registered", False),
        ("**.failed", "flight.failed", True),
        ("**.failed", "trip.flight.failed", True),
        ("**.failed", "flight.failed.twice", False),
        ("a.**.c", "a.c", True),
        ("a.**.c", "a.b.b.c", True),
        ("a.**.c", "a.b.b.d", False),
        ("*", "user.email.sent", True),
        ("**", "ping", True),
        ("user.*", "user.*", True),  # a name equal to the pattern (never emitted: refused)
    ],
)
def test_a_pattern_matches_the_topics_it_says(pattern, topic, expected):
    assert matches(pattern, topic) is expected


@pytest.mark.parametrize(
    "subscribes, fix",
    [
        (["user*"], "write '*' (one segment) or '**' (any depth)"),
        (["user.reg*"], "write 'user.*' (one segment) or 'user.**' (any depth)"),
        (["**x.failed"], "write '*.failed' (one segment) or '**.failed' (any depth)"),
        (["user..registered"], "has an empty segment"),
        (["user."], "has an empty segment"),
    ],
)
def test_a_wildcard_inside_a_segment_or_an_empty_segment_is_refused_with_the_fix(subscribes, fix):
    with pytest.raises(StepConfigError, match="subscribes") as refused:
        EventStep(name="Listener", subscribes=subscribes)
    assert fix in str(refused.value)


def test_an_emit_is_a_topic_not_a_pattern():
    """emits and ctx.emit name one topic: a pattern there is refused, saying why."""
    with pytest.raises(StepConfigError, match="'user.\\*' is a pattern; an event is emitted"):
        EventStep(name="Sender", subscribes=["t"], emits=["user.*"])
    with pytest.raises(StepConfigError, match="is a pattern"):
        EventStep(name="Sender", subscribes=["t"], emits=[{"topic": "**", "label": "all"}])
    with pytest.raises(TopicError, match="is a pattern"):
        bus.emit("user.*", {})


def test_example_names_a_topic_the_pattern_matches():
    for pattern in ("user.*", "**.failed", "a.**.c", "*", "**", "user.registered"):
        assert matches(pattern, example(pattern)) and "*" not in example(pattern)


def subscribe(steps, name, *topics):
    steps.add(EventStep(name=name, subscribes=list(topics)), nothing)


def test_subscribers_are_those_by_name_then_those_by_pattern_each_once(steps):
    subscribe(steps, "AnyDepth", "user.**")
    subscribe(steps, "OneSegment", "user.*")
    subscribe(steps, "ByName", "user.registered")
    subscribe(steps, "Both", "user.registered", "user.*")
    subscribe(steps, "Failures", "**.failed")
    subscribe(steps, "Monitor", "*")

    def names(topic):
        return [step.name for step in steps.subscribers(topic)]

    assert names("user.registered") == ["ByName", "Both", "AnyDepth", "OneSegment", "Monitor"]
    assert names("user.email.sent") == ["AnyDepth", "Monitor"]
    assert names("flight.failed") == ["Failures", "Monitor"]
    assert names("user.email.failed") == ["AnyDepth", "Failures", "Monitor"]
    assert names("order.placed") == ["Monitor"]


@pytest.mark.django_db
def test_an_emit_is_delivered_to_each_step_whose_pattern_matches_it(steps):
    subscribe(steps, "OneSegment", "user.*")
    subscribe(steps, "AnyDepth", "user.**")
    subscribe(steps, "Elsewhere", "order.*")
    event = bus.emit("user.email.sent", {"id": 1})
    delivered = Delivery.objects.filter(event=event).values_list("step_name", flat=True)
    assert sorted(delivered) == ["AnyDepth"]
    event = bus.emit("user.registered", {"id": 2})
    delivered = Delivery.objects.filter(event=event).values_list("step_name", flat=True)
    assert sorted(delivered) == ["AnyDepth", "OneSegment"]


def test_check_warns_of_a_pattern_that_matches_no_emitted_topic(steps):
    steps.add(ApiStep(name="Api", method="POST", path="/a", emits=["user.registered"]), api_handler)
    steps.add(EventStep(name="Users", subscribes=["user.*"]), nothing, "", "users_step.py")
    steps.add(EventStep(name="Orders", subscribes=["order.**"]), nothing, "", "orders_step.py")
    [message] = check_topics(steps)
    assert message.id == "workflow.W001" and message.obj == "orders_step.py"
    assert message.msg == (
        "Orders subscribes to the pattern 'order.**', which matches no topic any step emits"
    )


def test_a_pattern_subscriber_hears_what_it_matches_for_w002(steps):
    """An emit heard only through a pattern is heard: no W002 for it."""
    steps.add(
        ApiStep(name="Api", method="POST", path="/a", emits=["flight.failed", "hotel.booked"]),
        api_handler,
    )
    steps.add(EventStep(name="Compensate", subscribes=["**.failed"]), nothing)
    assert [m.msg for m in check_topics(steps)] == [
        "Api emits 'hotel.booked', which no step subscribes to"
    ]


def test_the_graph_draws_an_edge_to_a_pattern_subscriber_labelled_with_the_topic(steps):
    steps.add(
        ApiStep(name="Api", method="POST", path="/a", emits=["user.registered"], flows=["f"]),
        api_handler,
    )
    steps.add(EventStep(name="Users", subscribes=["user.*"], flows=["f"]), nothing)
    steps.add(EventStep(name="Orders", subscribes=["order.*"], flows=["f"]), nothing)
    edges = {(e.source, e.target, e.topic) for e in flow_graph(steps, "f").edges}
    assert ("Api", "Users", "user.registered") in edges
    assert ("topic:unsent:order.*", "Orders", "order.*") in edges  # nobody emits it
    assert not any(e[1] == "Orders" and e[0] == "Api" for e in edges)
