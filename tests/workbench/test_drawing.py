"""The Flows page's drawing: grandalf's layout turned left to right, edges at ports."""

from datetime import UTC, datetime
from itertools import combinations

from workbench.graph import drawing
from workflow.steps import ApiStep, CronStep, EventStep, NoopStep
from workflow.ticker import cron_slot


def handler(input, ctx):
    return None


def overlap(a, b):
    return not (
        a.x + a.width <= b.x
        or b.x + b.width <= a.x
        or a.y + a.height <= b.y
        or b.y + b.height <= a.y
    )


def test_twenty_steps_are_laid_out_left_to_right_without_overlaps(steps):
    """A 20-step flow (a fan-out, chains and a fan-in): no two nodes overlap, and every
    edge runs from its emitter's right side to its subscriber's left, further right."""
    steps.add(ApiStep(name="Start", method="POST", path="/s", emits=["go"], flows=["big"]), handler)
    for branch in range(4):
        previous = "go"
        for depth in range(4):
            topic = f"b{branch}.d{depth}"
            steps.add(
                EventStep(
                    name=f"B{branch}D{depth}",
                    subscribes=[previous],
                    emits=[topic] if depth < 3 else ["done"],
                    flows=["big"],
                ),
                handler,
            )
            previous = topic
    steps.add(EventStep(name="Join", subscribes=["done"], emits=["x"], flows=["big"]), handler)
    steps.add(EventStep(name="End1", subscribes=["x"], flows=["big"]), handler)
    steps.add(EventStep(name="End2", subscribes=["x"], flows=["big"]), handler)
    drawn = drawing("big")
    nodes = {node.id: node for node in drawn["nodes"]}
    assert len(nodes) == 20
    for a, b in combinations(nodes.values(), 2):
        assert not overlap(a, b), (a.id, b.id)
    for edge in drawn["edges"]:
        source, target = nodes[edge.source], nodes[edge.target]
        assert source.x + source.width < target.x, (edge.source, edge.target)
        assert edge.path.startswith(f"M{source.x + source.width:.1f},")
        end_x, end_y = map(float, edge.path.split()[-1].split(","))
        assert end_x == round(target.x, 1) and target.y < end_y < target.y + target.height
    assert all(0 < node.x + node.width <= drawn["width"] for node in nodes.values())
    assert all(0 < node.y + node.height <= drawn["height"] for node in nodes.values())


def test_edges_sharing_a_side_meet_it_at_separate_ports(steps):
    """Two topics fanning out of one step leave it at different heights, so their
    labels (above each edge's last stretch) do not sit on each other."""
    steps.add(ApiStep(name="A", method="POST", path="/a", emits=["t"], flows=["f"]), handler)
    steps.add(EventStep(name="B", subscribes=["t"], emits=["u"], flows=["f"]), handler)
    steps.add(EventStep(name="C", subscribes=["t"], emits=["u"], flows=["f"]), handler)
    steps.add(EventStep(name="D", subscribes=["u"], flows=["f"]), handler)
    edges = {(e.source, e.target): e for e in drawing("f")["edges"]}
    assert edges["A", "B"].path.split()[0] != edges["A", "C"].path.split()[0]
    assert edges["B", "D"].label_y != edges["C", "D"].label_y


def crossing_flows(steps):
    """orders: Place -> placed -> Bill (flow billing) -> billed -> Notify, which emits
    notified, declared open, that nobody subscribes to."""
    steps.add(
        ApiStep(name="Place", method="POST", path="/p", emits=["placed"], flows=["orders"]), handler
    )
    steps.add(
        EventStep(name="Bill", subscribes=["placed"], emits=["billed"], flows=["billing"]), handler
    )
    notified = {"topic": "notified", "open": True}
    steps.add(
        EventStep(name="Notify", subscribes=["billed"], emits=[notified], flows=["orders"]), handler
    )


def test_a_step_of_another_flow_is_drawn_apart_linking_to_its_flow(steps):
    """In orders, Bill (billing) is a card marked outside, saying its flow and linking to
    it, with an edge in and an edge out; no topic card, no fault, for topics it carries."""
    crossing_flows(steps)
    drawn = drawing("orders")
    nodes = {node.id: node for node in drawn["nodes"]}
    bill = nodes["Bill"]
    assert (bill.outside, bill.subtitle, bill.href, bill.fault) == (
        True,
        "flow billing",
        "?flow=billing",
        "",
    )
    assert not nodes["Place"].outside and nodes["Place"].href == ""
    pairs = {(e.source, e.target, e.label) for e in drawn["edges"]}
    assert {("Place", "Bill", "placed"), ("Bill", "Notify", "billed")} <= pairs
    assert [node.id for node in drawn["nodes"] if node.fault] == []


def test_an_open_emit_ends_at_an_open_topic_card_not_a_fault(steps):
    """Notify's notified, declared open, ends at a topic card marked open, 'declared open'."""
    crossing_flows(steps)
    [topic] = [node for node in drawing("orders")["nodes"] if node.kind == "topic"]
    assert (topic.label, topic.open, topic.fault, topic.subtitle) == (
        "notified",
        True,
        "",
        "declared open",
    )


def test_cards_say_their_steps_description_an_api_step_without_one_its_endpoint(steps):
    """A card's description is its step's, whole (the page clamps it to two lines); an
    API step's card without one says its method and path there, not twice."""
    long = "Sends the customer a receipt with every line of the order and its total"
    steps.add(ApiStep(name="A", method="POST", path="/a", emits=["t"], flows=["f"]), handler)
    steps.add(
        ApiStep(name="B", description="Takes orders", method="GET", path="/b", flows=["f"]),
        handler,
    )
    steps.add(EventStep(name="C", description=long, subscribes=["t"], flows=["f"]), handler)
    nodes = {node.id: node for node in drawing("f")["nodes"]}
    assert (nodes["A"].description, nodes["A"].subtitle) == ("POST /a", "")
    assert (nodes["B"].description, nodes["B"].subtitle) == ("Takes orders", "GET /b")
    assert (nodes["C"].description, nodes["C"].subtitle) == (long, "")
    assert all(node.counted and node.next_run is None for node in nodes.values())


def test_a_cron_card_says_its_next_run_in_the_servers_time_zone(steps, settings):
    """The next run is when the ticker fires the cron (read in UTC), shown in the
    server's time zone: its time of day when within a day, else its date too. A noop
    card is shorter: it has no line of counters."""
    steps.add(CronStep(name="Nightly", cron="15 3 * * *", flows=["f"]), lambda ctx: None)
    steps.add(CronStep(name="Monthly", cron="0 9 1 * *", flows=["f"]), lambda ctx: None)
    steps.add(NoopStep(name="Manual", flows=["f"]), None)
    now = datetime(2025, 1, 6, 2, 0, 30, tzinfo=UTC)
    nodes = {node.id: node for node in drawing("f", now)["nodes"]}
    nightly = nodes["Nightly"]
    assert (nightly.subtitle, nightly.next_run.label) == ("15 3 * * *", "03:15:00")
    assert nightly.next_run.full == "2025-01-06 03:15:00 UTC"
    assert nodes["Monthly"].next_run.label == "2025-02-01 09:00"
    assert [run.at for run in nightly.upcoming[:2]] == [
        datetime(2025, 1, 6, 3, 15, tzinfo=UTC),
        datetime(2025, 1, 7, 3, 15, tzinfo=UTC),
    ]
    assert all(cron_slot("15 3 * * *", run.at) == run.at for run in nightly.upcoming)
    manual = nodes["Manual"]
    assert (manual.counted, manual.next_run) == (False, None)
    assert manual.height < nightly.height

    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+05:30
    nightly = next(node for node in drawing("f", now)["nodes"] if node.id == "Nightly")
    assert nightly.next_run.label == "08:45:00"
    assert nightly.next_run.full == "2025-01-06 08:45:00 IST"
    assert nightly.next_run.as_json()["at"] == "2025-01-06T08:45:00+05:30"


def test_flows_are_listed_in_the_order_their_first_steps_were_registered(steps):
    """The dropdown's order, whose first flow the Flows page opens: the apps' order in
    INSTALLED_APPS (users before bookings in this project), not by name or size."""
    from workbench import graph as drawing
    from workflow.steps import EventStep

    steps.add(EventStep(name="Z1", subscribes=["t"], flows=["zeta"]), lambda i, c: None)
    steps.add(EventStep(name="A1", subscribes=["t"], flows=["alpha", "zeta"]), lambda i, c: None)
    steps.add(EventStep(name="A2", subscribes=["t"], flows=["alpha"]), lambda i, c: None)
    assert drawing.flows() == ["zeta", "alpha"]


def test_labels_of_edges_into_one_card_are_a_line_apart(steps):
    """Four topics from four steps into one card (the saga's step of trip-booking):
    their labels, right-aligned by the card, are each a line from the next, in the
    order of their edges."""
    steps.add(ApiStep(name="A", method="POST", path="/a", emits=["t"], flows=["f"]), handler)
    for name in "BCDE":
        emits = [f"{name.lower()}.failed", f"{name.lower()}.reserved"]
        steps.add(EventStep(name=name, subscribes=["t"], emits=emits, flows=["f"]), handler)
    topics = [f"{n}.{what}" for n in "bcde" for what in ("failed", "reserved")]
    steps.add(EventStep(name="Ledger", subscribes=topics, flows=["f"]), handler)
    into = sorted(
        (e for e in drawing("f")["edges"] if e.target == "Ledger"), key=lambda e: e.label_y
    )
    assert len(into) == 4
    ys = [edge.label_y for edge in into]
    assert all(b - a >= 13 for a, b in zip(ys, ys[1:], strict=False)), ys
    ends = [float(edge.path.split()[-1].split(",")[1]) for edge in into]
    assert ends == sorted(ends)  # the labels keep the order of their edges
