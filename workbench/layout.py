"""Coordinates for a flow graph, left to right, by grandalf's layered (Sugiyama) layout.

grandalf lays layers out top to bottom; we give it each node's size turned a quarter
and turn the result back, so ranks run left to right as in Motia's workbench.
"""

from dataclasses import dataclass

from grandalf.graphs import Edge as LayoutEdge
from grandalf.graphs import Graph as LayoutGraph
from grandalf.graphs import Vertex
from grandalf.layouts import SugiyamaLayout

DEFAULT_WIDTH = 240
TOPIC_HEIGHT = 40
CARD_HEIGHT = 74  # a step's card: its name, then two lines of description
FOOTER_HEIGHT = 20  # and a last line: its run counts, endpoint, cron or other flow
RANK_GAP = 190  # between columns: room for the topic labels
ROW_GAP = 34  # between nodes of one column
COMPONENT_GAP = 50
MARGIN = 24


class _View:
    def __init__(self, w, h):
        self.w, self.h = w, h  # as grandalf sees them: turned a quarter
        self.xy = (0, 0)


class _EdgeView:
    points = ()

    def setpath(self, points):
        self.points = points


@dataclass
class Placed:
    """A node's box: top-left corner and size, in SVG units."""

    x: float
    y: float
    width: float
    height: float

    @property
    def right(self):
        return self.x + self.width

    @property
    def middle(self):
        return self.y + self.height / 2


@dataclass
class Drawing:
    boxes: dict  # node id -> Placed
    routes: dict  # (source, target) -> [(x, y), ...] through the layout's bends
    width: float
    height: float


def size(node):
    if node.kind == "topic":  # as wide as its topic name, in 12px monospace
        return max(150, round(len(node.label) * 7.3 + 26)), TOPIC_HEIGHT
    if node.kind == "noop" and not node.outside:  # it never runs: nothing to count
        return DEFAULT_WIDTH, CARD_HEIGHT
    return DEFAULT_WIDTH, CARD_HEIGHT + FOOTER_HEIGHT


def layout(graph):
    vertices = {}
    for node in graph.nodes:
        width, height = size(node)
        vertex = Vertex(node.id)
        vertex.view = _View(height, width)
        vertices[node.id] = vertex
    pairs = sorted({(e.source, e.target) for e in graph.edges if e.source != e.target})
    layout_edges = []
    for source, target in pairs:
        edge = LayoutEdge(vertices[source], vertices[target])
        edge.view = _EdgeView()
        layout_edges.append(edge)
    whole = LayoutGraph(list(vertices.values()), layout_edges)
    boxes, routes, offset = {}, {}, 0.0
    for component in sorted(whole.C, key=lambda c: -len(c.sV)):
        sugiyama = SugiyamaLayout(component)
        sugiyama.xspace, sugiyama.yspace = ROW_GAP, RANK_GAP
        sugiyama.init_all()
        sugiyama.draw()
        offset = _place(component, boxes, routes, offset) + COMPONENT_GAP
    return _framed(boxes, routes)


def _place(component, boxes, routes, offset):
    """Turn one laid-out component back to left-to-right, below the previous ones."""
    top = min(v.view.xy[0] - v.view.w / 2 for v in component.sV)
    for vertex in component.sV:
        x, y = vertex.view.xy
        height, width = vertex.view.w, vertex.view.h
        boxes[vertex.data] = Placed(y - width / 2, x - top + offset - height / 2, width, height)
    for edge in component.sE:
        bends = [(y, x - top + offset) for x, y in edge.view.points[1:-1]]
        routes[(edge.v[0].data, edge.v[1].data)] = bends
    return max(box.y + box.height for box in boxes.values())


def _framed(boxes, routes):
    """Shift everything so the drawing starts at the margin; its overall size."""
    if not boxes:
        return Drawing({}, {}, 2 * MARGIN, 2 * MARGIN)
    dx = MARGIN - min(b.x for b in boxes.values())
    dy = MARGIN - min(b.y for b in boxes.values())
    for box in boxes.values():
        box.x += dx
        box.y += dy
    routes = {pair: [(x + dx, y + dy) for x, y in bends] for pair, bends in routes.items()}
    width = max(b.right for b in boxes.values()) + MARGIN
    height = max(b.y + b.height for b in boxes.values()) + MARGIN
    return Drawing(boxes, routes, width, height)
