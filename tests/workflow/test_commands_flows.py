"""``manage.py flows``: the step graph as text, JSON, Mermaid and Graphviz dot, faults marked."""

import json
from io import StringIO

import pydot
import pytest
from django.core.management import CommandError, call_command

from workflow.registry import Problem
from workflow.steps import ApiStep, EventStep, NoopStep

# pydot's parser uses pyparsing names that pyparsing 3.3 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:'setParseAction' deprecated")


def flows(*args):
    out, err = StringIO(), StringIO()
    call_command("flows", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def handler(input, ctx):
    pass


@pytest.fixture
def shop(steps):
    """PlaceOrder (api) -> order.placed -> Ship, Bill (*); Ship virtually emits to a
    noop Courier; Bill emits bill.sent (heard by nobody); Audit waits on audit.due
    (sent by nobody); Other is in another flow."""
    steps.add(
        ApiStep(
            name="PlaceOrder",
            method="POST",
            path="/orders",
            emits=["order.placed"],
            flows=["shop"],
            description="Takes an order",
        ),
        lambda request, ctx: None,
    )
    steps.add(
        EventStep(
            name="Ship",
            subscribes=["order.placed"],
            virtual_emits=["parcel.handed"],
            flows=["shop"],
        ),
        handler,
    )
    steps.add(
        EventStep(name="Bill", subscribes=["order.placed"], emits=["bill.sent"], flows=["shop"]),
        handler,
    )
    steps.add(NoopStep(name="Courier", virtual_subscribes=["parcel.handed"], flows=["shop"]), None)
    steps.add(EventStep(name="Audit", subscribes=["audit.due"], flows=["shop"]), handler)
    steps.add(EventStep(name="Other", subscribes=["x"], flows=["elsewhere"]), handler)
    return steps


@pytest.fixture
def crossing(steps):
    """orders: PlaceOrder -> order.placed -> Bill (flow billing) -> bill.sent -> Notify;
    Stray emits what nobody hears; Archive (no flow) hears Notify's open topic."""
    steps.add(
        ApiStep(
            name="PlaceOrder", method="POST", path="/o", emits=["order.placed"], flows=["orders"]
        ),
        lambda request, ctx: None,
    )
    steps.add(
        EventStep(name="Bill", subscribes=["order.placed"], emits=["bill.sent"], flows=["billing"]),
        handler,
    )
    steps.add(
        EventStep(
            name="Notify",
            subscribes=["bill.sent"],
            emits=[{"topic": "notified", "open": True}],
            flows=["orders"],
        ),
        handler,
    )
    steps.add(
        EventStep(name="Stray", subscribes=["bill.sent"], emits=["lost"], flows=["orders"]), handler
    )
    steps.add(EventStep(name="Archive", subscribes=["notified"]), handler)
    return steps


def test_text_lists_steps_in_flow_order_with_edges_and_no_faults(shipped_steps):
    """The tutorial's flow as text: entry point first, each edge with its topic (the
    link in the welcome email, virtual, to the email-verification chain), and
    account.setup.completed, declared open, as an open end: no fault."""
    out, _ = flows("--flow", "user-registration")
    assert out.splitlines() == [
        "flow user-registration: 5 steps",
        "  RegisterUser [api] POST /users/register",
        "    --user.registered--> SendWelcomeEmail",
        "    --user.registered--> SetupUserAccount",
        "  SendWelcomeEmail [event]",
        "    --email.sent--> LogNotification",
        "    --email.sent--> VerifyEmail (flow email-verification) (virtual)",
        "  SetupUserAccount [event]",
        "    --account.setup.completed--> (open end)",
        "  LogNotification [event]",
        "  GetUserStatus [api] GET /users/:userId/status",
        "faults: none",
    ]


def test_text_shows_topics_that_cross_flows_as_edges_to_and_from_the_other_flow(crossing):
    """--flow orders: order.placed goes to Bill (flow billing), bill.sent comes back from
    it, notified goes to Archive (in no flow); only the emit nobody hears is a fault."""
    out, _ = flows("--flow", "orders")
    assert out.splitlines() == [
        "flow orders: 3 steps",
        "  PlaceOrder [api] POST /o",
        "    --order.placed--> Bill (flow billing)",
        "  Notify [event]",
        "    <--bill.sent-- Bill (flow billing)",
        "    --notified--> Archive (no flow)",
        "  Stray [event]",
        "    <--bill.sent-- Bill (flow billing)",
        "    --lost--> ! nobody (unheard)",
        "faults: 1",
        "  ! Stray: 'lost' is emitted, but no step subscribes to it (unheard)",
    ]
    billing, _ = flows("--flow", "billing")
    assert billing.splitlines() == [
        "flow billing: 1 step",
        "  Bill [event]",
        "    <--order.placed-- PlaceOrder (flow orders)",
        "    --bill.sent--> Notify (flow orders)",
        "    --bill.sent--> Stray (flow orders)",
        "faults: none",
    ]


def test_json_marks_steps_of_other_flows_and_open_ends(crossing):
    """--format json: a step of another flow is a node marked outside, with its flows;
    an open end is a topic node marked open; faults list only real faults."""
    graph = json.loads(flows("--flow", "orders", "--format", "json")[0])
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert (nodes["Bill"]["outside"], nodes["Bill"]["flows"]) == (True, ["billing"])
    assert nodes["PlaceOrder"]["outside"] is False
    assert graph["faults"] == [{"step": "Stray", "topic": "lost", "fault": "unheard"}]
    crossing.add(
        EventStep(
            name="Shout", subscribes=["x"], emits=[{"topic": "y", "open": True}], flows=["orders"]
        ),
        handler,
    )
    graph = json.loads(flows("--flow", "orders", "--format", "json")[0])
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["topic:open:y"] == {
        "id": "topic:open:y",
        "kind": "topic",
        "label": "y",
        "fault": "",
        "open": True,
        "outside": False,
    }


def test_mermaid_and_dot_draw_steps_of_other_flows_apart(crossing):
    """Mermaid: another flow's step says its flow and has the 'outside' class; dot: dashed."""
    out = flows("--flow", "orders", "--format", "mermaid")[0].splitlines()
    [bill] = [line for line in out if '["Bill<br/>' in line]
    assert bill.endswith('["Bill<br/>event flow billing"]:::outside')
    assert any(line.startswith("  classDef outside ") for line in out)
    [graph] = pydot.graph_from_dot_data(flows("--flow", "orders", "--format", "dot")[0])
    [node] = [n for n in graph.get_nodes() if (n.get_label() or "").startswith('"Bill')]
    assert (node.get_label(), node.get_style()) == ('"Bill\\nevent flow billing"', "dashed")


def test_mermaid_and_dot_draw_an_open_end_apart_from_faults(shipped_steps):
    """The tutorial's account.setup.completed, declared open: Mermaid's 'open' class (no
    'fault' class at all), a grey dashed ellipse in dot."""
    out = flows("--flow", "user-registration", "--format", "mermaid")[0].splitlines()
    [end] = [line for line in out if "account.setup.completed (" in line]
    assert end.endswith('(["account.setup.completed (open)"]):::open')
    classes = [line.split()[1] for line in out if line.startswith("  classDef ")]
    assert "fault" not in classes and "open" in classes
    dot = flows("--flow", "user-registration", "--format", "dot")[0]
    [graph] = pydot.graph_from_dot_data(dot)
    [node] = [n for n in graph.get_nodes() if "(open)" in (n.get_label() or "")]
    assert (node.get_shape(), node.get_style(), node.get_color()) == (
        "ellipse",
        "dashed",
        '"#777777"',
    )


def test_text_marks_virtual_edges_and_both_kinds_of_fault(shop):
    """Virtual edges say so; an emit nobody hears and a subscription nobody sends are faults;
    a step of another flow that shares no topic with this one is left out."""
    out, _ = flows("--flow", "shop")
    assert "flow shop: 5 steps" in out
    assert "    --parcel.handed--> Courier (virtual)" in out
    assert "Other" not in out
    assert out.splitlines()[-3:] == [
        "faults: 2",
        "  ! Bill: 'bill.sent' is emitted, but no step subscribes to it (unheard)",
        "  ! Audit: 'audit.due' is subscribed to, but no step emits it (unsent)",
    ]


def test_without_a_flow_every_step_is_drawn(shop):
    """No --flow: all steps, whatever their flow."""
    out, _ = flows()
    assert out.startswith("all steps: 6 steps")
    assert "  Other [event]" in out


def test_json_has_nodes_edges_and_faults(shop):
    """--format json: typed nodes, edges with topic and virtual flag, and the faults."""
    graph = json.loads(flows("--flow", "shop", "--format", "json")[0])
    assert graph["flow"] == "shop"
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    assert kinds == {
        "PlaceOrder": "api",
        "Ship": "event",
        "Bill": "event",
        "Courier": "noop",
        "Audit": "event",
        "topic:unheard:bill.sent": "topic",
        "topic:unsent:audit.due": "topic",
    }
    place_order = next(n for n in graph["nodes"] if n["id"] == "PlaceOrder")
    assert (place_order["detail"], place_order["description"]) == ("POST /orders", "Takes an order")
    edges = {(e["source"], e["topic"], e["target"], e["virtual"]) for e in graph["edges"]}
    assert edges == {
        ("PlaceOrder", "order.placed", "Ship", False),
        ("PlaceOrder", "order.placed", "Bill", False),
        ("Ship", "parcel.handed", "Courier", True),
        ("Bill", "bill.sent", "topic:unheard:bill.sent", False),
        ("topic:unsent:audit.due", "audit.due", "Audit", False),
    }
    assert graph["faults"] == [
        {"step": "Bill", "topic": "bill.sent", "fault": "unheard"},
        {"step": "Audit", "topic": "audit.due", "fault": "unsent"},
    ]


def test_mermaid_draws_steps_topics_virtual_edges_and_fault_nodes(shop):
    """--format mermaid: a flowchart; solid and dotted (virtual) labelled arrows; fault
    topics as styled nodes."""
    out = flows("--flow", "shop", "--format", "mermaid")[0].splitlines()
    assert out[0] == "flowchart LR"
    ids = {line.split("[")[0].split("(")[0].strip(): line for line in out[1:8]}
    by_label = {line.split('"')[1].split("<br/>")[0]: node for node, line in ids.items()}
    place, ship, courier = by_label["PlaceOrder"], by_label["Ship"], by_label["Courier"]
    assert f'  {place}["PlaceOrder<br/>api POST /orders"]' in out
    assert f"  {place} -->|order.placed| {ship}" in out
    assert f"  {ship} -.->|parcel.handed| {courier}" in out
    unheard = by_label["bill.sent (unheard)"]
    assert f'  {unheard}(["bill.sent (unheard)"]):::fault' in out
    assert out[-1].startswith("  classDef fault ")


def test_mermaid_escapes_quotes_in_labels(steps):
    """A quote in a topic or name cannot break the Mermaid text."""
    steps.add(EventStep(name="A", subscribes=['say "hi"'], emits=["b|c"]), handler)
    out = flows("--format", "mermaid")[0]
    assert '"' not in out.replace('["', "").replace('"]', "")
    assert "say #quot;hi#quot; (unsent)" in out
    assert "|b#124;c|" in out


def test_dot_parses_with_dashed_virtual_edges(shop):
    """--format dot: valid Graphviz (parsed by pydot), one node per step and fault, labelled
    edges, the virtual one dashed."""
    out = flows("--flow", "shop", "--format", "dot")[0]
    [graph] = pydot.graph_from_dot_data(out)
    assert graph.get_name() == '"shop"'
    labels = {n.get_name(): n.get_label().strip('"') for n in graph.get_nodes() if n.get_label()}
    by_name = {label.split("\\n")[0]: node for node, label in labels.items()}
    assert set(by_name) == {
        "PlaceOrder",
        "Ship",
        "Bill",
        "Courier",
        "Audit",
        "bill.sent",
        "audit.due",
    }
    assert labels[by_name["PlaceOrder"]] == "PlaceOrder\\napi POST /orders"
    edges = {
        (e.get_source(), e.get_label().strip('"'), e.get_destination(), e.get_style())
        for e in graph.get_edges()
    }
    assert (by_name["Ship"], "parcel.handed", by_name["Courier"], "dashed") in edges
    assert (by_name["PlaceOrder"], "order.placed", by_name["Bill"], None) in edges
    assert len(edges) == 5


def test_dot_escapes_quotes(steps):
    """A quote in a topic stays inside its dot string."""
    steps.add(EventStep(name="A", subscribes=['say "hi"']), handler)
    [graph] = pydot.graph_from_dot_data(flows("--format", "dot")[0])
    assert [e.get_label() for e in graph.get_edges()] == ['"say \\"hi\\""']


def test_an_unknown_flow_is_an_error_naming_the_flows(shop):
    with pytest.raises(CommandError, match="no flow named 'shoop'; the flows are: elsewhere, shop"):
        flows("--flow", "shoop")


def test_no_steps_is_an_error(steps):
    with pytest.raises(CommandError, match="no steps are registered"):
        flows()


def test_an_unknown_format_is_refused():
    with pytest.raises(CommandError, match="invalid choice: 'svg'"):
        flows("--format", "svg")


def test_a_step_module_that_did_not_load_is_named_on_stderr(shop):
    """A step missing from the graph because its module failed is reported, not hidden."""
    shop.problems.append(
        Problem("workflow.E003", "shop/steps/x_step.py could not be loaded", "", "")
    )
    out, err = flows("--flow", "shop")
    assert "flow shop" in out
    assert err.strip() == (
        "not in the graph: shop/steps/x_step.py could not be loaded (workflow.E003; see "
        "manage.py check)"
    )
