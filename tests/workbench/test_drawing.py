"""The Flows page's drawing: grandalf's layout turned left to right, edges at ports."""

from itertools import combinations

from workbench.graph import drawing
from workflow.steps import ApiStep, EventStep


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
