"""The step graph of a flow, from the registry alone (workflow.graph)."""

from workflow.graph import flow_graph
from workflow.steps import ApiStep, CronStep, EventStep, NoopStep


def event_handler(input, ctx):
    return None


def edges(graph):
    return sorted((e.source, e.topic, e.target, e.virtual) for e in graph.edges)


def test_the_tutorial_flow_has_five_steps_three_topic_edges_and_one_open_end(shipped_steps):
    """user-registration: user.registered to both subscribers, email.sent to the notifier
    (and, virtually, to the email-verification chain's VerifyEmail, drawn outside), and
    account.setup.completed (declared open) ending at an open topic node, no fault."""
    graph = flow_graph(shipped_steps, "user-registration")
    steps = {n.id: n.kind for n in graph.nodes if n.kind != "topic" and not n.outside}
    assert steps == {
        "RegisterUser": "api",
        "SendWelcomeEmail": "event",
        "SetupUserAccount": "event",
        "LogNotification": "event",
        "GetUserStatus": "api",
    }
    assert [n.id for n in graph.nodes if n.outside] == ["VerifyEmail"]
    [end] = [n for n in graph.nodes if n.kind == "topic"]
    assert (end.id, end.label, end.open, end.fault) == (
        "topic:open:account.setup.completed",
        "account.setup.completed",
        True,
        "",
    )
    assert edges(graph) == [
        ("RegisterUser", "user.registered", "SendWelcomeEmail", False),
        ("RegisterUser", "user.registered", "SetupUserAccount", False),
        ("SendWelcomeEmail", "email.sent", "LogNotification", False),
        ("SendWelcomeEmail", "email.sent", "VerifyEmail", True),
        ("SetupUserAccount", "account.setup.completed", end.id, False),
    ]


def test_virtual_edges_unsent_subscriptions_and_flow_membership(steps):
    """A virtual emit or subscription gives a virtual edge; a subscription nobody emits
    starts at an 'unsent' topic node; a step of another flow is drawn only at the far end
    of a topic, marked outside."""
    steps.add(CronStep(name="Tick", cron="* * * * *", flows=["f"], emits=["a"]), lambda ctx: 0)
    steps.add(
        EventStep(name="A", subscribes=["a"], flows=["f"], virtual_emits=["b"]), event_handler
    )
    steps.add(NoopStep(name="Human", virtual_subscribes=["b"], flows=["f"]), None)
    steps.add(EventStep(name="Outside", subscribes=["a"], flows=["g"]), event_handler)
    steps.add(EventStep(name="Unrelated", subscribes=["c"], flows=["g"]), event_handler)
    steps.add(EventStep(name="Waits", subscribes=["nobody.sends"], flows=["f"]), event_handler)
    graph = flow_graph(steps, "f")
    members = [n.id for n in graph.nodes if n.kind != "topic" and not n.outside]
    assert members == ["Tick", "A", "Human", "Waits"]
    assert [n.id for n in graph.nodes if n.outside] == ["Outside"]
    assert edges(graph) == [
        ("A", "b", "Human", True),
        ("Tick", "a", "A", False),
        ("Tick", "a", "Outside", False),
        ("topic:unsent:nobody.sends", "nobody.sends", "Waits", False),
    ]
    assert graph.node("topic:unsent:nobody.sends").fault == "unsent"


def two_flows(steps):
    """orders: PlaceOrder -> order.placed -> Bill (billing) -> bill.sent -> Notify (orders);
    Lonely emits what nobody hears, Waits waits for what nobody sends, Hand emits an open
    topic that Archive (archive) subscribes to."""
    api = ApiStep(
        name="PlaceOrder", method="POST", path="/o", emits=["order.placed"], flows=["orders"]
    )
    steps.add(api, lambda request, ctx: None)

    def add(name, flow, **fields):
        steps.add(EventStep(name=name, flows=[flow], **fields), event_handler)

    add("Bill", "billing", subscribes=["order.placed"], emits=["bill.sent"])
    add("Notify", "orders", subscribes=["bill.sent"])
    add("Lonely", "orders", subscribes=["order.placed"], emits=["nobody.hears"])
    add("Waits", "orders", subscribes=["nobody.sends"])
    add("Hand", "orders", subscribes=["bill.sent"], emits=[{"topic": "handed", "open": True}])
    add("Archive", "archive", subscribes=["handed"])
    return steps


def test_topics_that_cross_flows_are_edges_to_and_from_the_other_flows_step(steps):
    """In orders: an edge to Bill of billing for order.placed, and one from it for
    bill.sent, Bill marked outside (not a member), no fault for either topic; an open
    emit heard in another flow is an edge there, not an open end; nobody anywhere is
    still a fault."""
    graph = flow_graph(two_flows(steps), "orders")
    bill = graph.node("Bill")
    assert (bill.outside, bill.kind, bill.flows) == (True, "event", ("billing",))
    assert graph.node("Archive").outside
    assert edges(graph) == [
        ("Bill", "bill.sent", "Hand", False),
        ("Bill", "bill.sent", "Notify", False),
        ("Hand", "handed", "Archive", False),
        ("Lonely", "nobody.hears", "topic:unheard:nobody.hears", False),
        ("PlaceOrder", "order.placed", "Bill", False),
        ("PlaceOrder", "order.placed", "Lonely", False),
        ("topic:unsent:nobody.sends", "nobody.sends", "Waits", False),
    ]
    assert sorted((n.label, n.fault) for n in graph.nodes if n.kind == "topic") == [
        ("nobody.hears", "unheard"),
        ("nobody.sends", "unsent"),
    ]


def test_the_other_flow_sees_the_same_crossing_from_its_side(steps):
    """In billing: Bill's order.placed comes from PlaceOrder of orders, its bill.sent
    goes to Notify and Hand of orders; no topic node at all."""
    graph = flow_graph(two_flows(steps), "billing")
    assert [n.id for n in graph.nodes if not n.outside] == ["Bill"]
    assert sorted(n.id for n in graph.nodes if n.outside) == ["Hand", "Notify", "PlaceOrder"]
    assert edges(graph) == [
        ("Bill", "bill.sent", "Hand", False),
        ("Bill", "bill.sent", "Notify", False),
        ("PlaceOrder", "order.placed", "Bill", False),
    ]


def test_a_wildcard_subscriber_of_another_flow_hears_the_flows_emits(steps):
    """A '*' subscriber elsewhere receives every topic: an edge to it, not an unheard fault."""
    steps.add(EventStep(name="A", subscribes=["go"], emits=["t"], flows=["f"]), event_handler)
    steps.add(EventStep(name="B", subscribes=["t"], emits=["go"], flows=["f"]), event_handler)
    steps.add(EventStep(name="Audit", subscribes=["*"], flows=["audit"]), event_handler)
    graph = flow_graph(steps, "f")
    assert ("A", "t", "Audit", False) in edges(graph)
    assert [n for n in graph.nodes if n.kind == "topic"] == []
