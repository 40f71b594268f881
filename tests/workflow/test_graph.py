"""The step graph of a flow, from the registry alone (workflow.graph)."""

from workflow.graph import flow_graph
from workflow.registry import registry
from workflow.steps import CronStep, EventStep, NoopStep


def event_handler(input, ctx):
    return None


def edges(graph):
    return sorted((e.source, e.topic, e.target, e.virtual) for e in graph.edges)


def test_the_tutorial_flow_has_five_steps_three_topic_edges_and_one_unheard_emit():
    """user-registration: user.registered to both subscribers, email.sent to the notifier,
    and account.setup.completed ending at a topic node marked unheard."""
    graph = flow_graph(registry, "user-registration")
    steps = {n.id: n.kind for n in graph.nodes if n.kind != "topic"}
    assert steps == {
        "RegisterUser": "api",
        "SendWelcomeEmail": "event",
        "SetupUserAccount": "event",
        "LogNotification": "event",
        "GetUserStatus": "api",
    }
    [unheard] = [n for n in graph.nodes if n.kind == "topic"]
    assert (unheard.label, unheard.fault) == ("account.setup.completed", "unheard")
    assert edges(graph) == [
        ("RegisterUser", "user.registered", "SendWelcomeEmail", False),
        ("RegisterUser", "user.registered", "SetupUserAccount", False),
        ("SendWelcomeEmail", "email.sent", "LogNotification", False),
        ("SetupUserAccount", "account.setup.completed", unheard.id, False),
    ]


def test_virtual_edges_unsent_subscriptions_and_flow_membership(steps):
    """A virtual emit or subscription gives a virtual edge; a subscription nobody in the
    flow emits starts at an 'unsent' topic node; steps of other flows are left out."""
    steps.add(CronStep(name="Tick", cron="* * * * *", flows=["f"], emits=["a"]), lambda ctx: 0)
    steps.add(
        EventStep(name="A", subscribes=["a"], flows=["f"], virtual_emits=["b"]), event_handler
    )
    steps.add(NoopStep(name="Human", virtual_subscribes=["b"], flows=["f"]), None)
    steps.add(EventStep(name="Outside", subscribes=["a"], flows=["g"]), event_handler)
    steps.add(EventStep(name="Waits", subscribes=["nobody.sends"], flows=["f"]), event_handler)
    graph = flow_graph(steps, "f")
    assert [n.id for n in graph.nodes if n.kind != "topic"] == ["Tick", "A", "Human", "Waits"]
    assert edges(graph) == [
        ("A", "b", "Human", True),
        ("Tick", "a", "A", False),
        ("topic:unsent:nobody.sends", "nobody.sends", "Waits", False),
    ]
    assert graph.node("topic:unsent:nobody.sends").fault == "unsent"
