"""What the Flows page draws: workflow.graph's nodes and edges, placed by layout.py.

Everything here is data for the template (which escapes it); no markup is built in
Python. A step of another flow at the far end of a topic is a card of its own, linking
to that flow; an emit declared open ends at an open topic card, which is no fault.
A cron step's card says when it runs next, in the server's time zone.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from croniter import croniter
from django.utils import timezone
from django.utils.http import urlencode

from workflow.diagrams import event_summary, where
from workflow.graph import flow_graph
from workflow.registry import registry

from .layout import layout

MIN_SCALE = 0.75
KIND_NAMES = {"api": "API", "event": "Event", "cron": "Cron", "noop": "Noop", "topic": "Topic"}
COUNTED_KINDS = ("api", "event", "cron")  # a noop step has no handler: it never runs
NEXT_RUNS = 20  # upcoming cron times sent to the page, which shows each as it comes
# A card's run counters: (bucket of workbench.views.flows.run_counts, class, sign)
TALLY = (
    ("running", "run", "▸"),
    ("succeeded", "ok", "✓"),
    ("refused", "refused", "⊘"),
    ("failed", "fail", "✗"),
)


@dataclass
class NextRun:
    """One upcoming run of a cron step, in the server's time zone."""

    at: datetime
    label: str  # "03:15:00" within a day, else "2025-06-02 03:15"

    @property
    def full(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.at.tzname()}"

    def as_json(self):
        return {"at": self.at.isoformat(), "label": self.label, "full": self.full}


@dataclass
class DrawnNode:
    id: str
    kind: str
    label: str
    subtitle: str  # the card's last line: an endpoint, a cron, another flow, a topic's fault
    fault: str
    open: bool
    outside: bool
    href: str  # a step of another flow: that flow's page
    x: float
    y: float
    width: float
    height: float
    description: str = ""
    next_run: NextRun | None = None
    upcoming: list = field(default_factory=list)  # NextRun, the first being next_run
    counts: dict = field(default_factory=dict)  # runs by bucket, set by the page's view

    @property
    def kind_name(self):
        return KIND_NAMES[self.kind]

    @property
    def counted(self):
        """Whether the card counts its step's runs: a step of this flow that can run."""
        return self.kind in COUNTED_KINDS and not self.outside

    @property
    def tally(self):
        """``[(class, sign, n)]``: the card's counters (a zero one is hidden)."""
        return [(name, sign, self.counts.get(bucket, 0)) for bucket, name, sign in TALLY]

    @property
    def ran(self):
        return any(self.counts.values())


@dataclass
class DrawnEdge:
    source: str
    target: str
    topics: list
    virtual: bool
    path: str
    label_x: float
    label_y: float
    end_y: float  # where it meets its target's side

    @property
    def label(self):
        return ", ".join(self.topics)


def endpoint(config):
    return f"{config.method} {config.path}"


def description(node):
    """What a step's card says under its name: its description; an API step without
    one, its method and path."""
    if node.kind == "topic":
        return ""
    config = node.step.config
    if not config.description and node.kind == "api":
        return endpoint(config)
    return config.description


def subtitle(node):
    if node.kind == "topic":
        if node.open:
            return "declared open"
        return "no subscriber" if node.fault == "unheard" else "no emitter"
    if node.outside:
        return where(node)
    config = node.step.config
    if node.kind == "api":  # said by the description when there is none
        return endpoint(config) if config.description else ""
    if node.kind == "cron":
        return config.cron
    return event_summary(config)


def next_runs(expression, now=None, count=NEXT_RUNS):
    """The next ``count`` times ``expression`` fires after ``now``: read in UTC, as the
    ticker reads it (``workflow.ticker.cron_slot``), shown in the server's time zone,
    each labelled by its time of day when within a day of ``now``."""
    now = (now or timezone.now()).astimezone(UTC)
    times = croniter(expression, now)
    upcoming = [timezone.localtime(times.get_next(datetime)) for _ in range(count)]
    return [
        NextRun(at, f"{at:%H:%M:%S}" if at - now < timedelta(days=1) else f"{at:%Y-%m-%d %H:%M}")
        for at in upcoming
    ]


def href(node):
    """The page of the flow a step of another flow belongs to (its first); else none."""
    if not (node.outside and node.flows):
        return ""
    return "?" + urlencode({"flow": node.flows[0]})


def curve(points):
    """An SVG path through ``points`` with horizontal tangents at each one."""
    (x, y), rest = points[0], points[1:]
    parts = [f"M{x:.1f},{y:.1f}"]
    for nx, ny in rest:
        bend = max(abs(nx - x) / 2, 30)
        parts.append(f"C{x + bend:.1f},{y:.1f} {nx - bend:.1f},{ny:.1f} {nx:.1f},{ny:.1f}")
        x, y = nx, ny
    return " ".join(parts)


def ports(pairs, boxes, end):
    """Where each edge meets a node's side: edges sharing a side are spread along it,
    in the order of the nodes at their other ends (so they do not cross there)."""
    by_node = {}
    for pair in pairs:
        by_node.setdefault(pair[end], []).append(pair)
    placed = {}
    for node, sharing in by_node.items():
        box = boxes[node]
        sharing.sort(key=lambda pair: boxes[pair[1 - end]].middle)
        for i, pair in enumerate(sharing):
            placed[pair] = box.y + box.height * (i + 1) / (len(sharing) + 1)
    return placed


LABEL_LINE = 13  # px between two edge labels' baselines (11 px monospace text)


def spread_labels(edges):
    """Labels of the edges into one node share their right edge, so two closer than a
    line overlap (four edges into a card 80 px high are 16 px apart, and a label sits
    above or below its edge): they are pushed apart to a line each, in the order of
    their edges, and the block moved back to centre on where they wanted to be."""
    by_target = {}
    for edge in edges:
        by_target.setdefault(edge.target, []).append(edge)
    for sharing in by_target.values():
        sharing.sort(key=lambda edge: edge.end_y)
        wanted = [edge.label_y for edge in sharing]
        placed = wanted[:1]
        for y in wanted[1:]:
            placed.append(max(y, placed[-1] + LABEL_LINE))
        shift = (sum(placed) - sum(wanted)) / len(placed)
        for edge, y in zip(sharing, placed, strict=True):
            edge.label_y = max(LABEL_LINE, y - shift)


def drawing(flow, now=None):
    """The cards and edges of ``flow``; cron cards say their next run after ``now``."""
    graph = flow_graph(registry, flow)
    placed = layout(graph)
    boxes = placed.boxes
    nodes = []
    for n in graph.nodes:
        cron = n.kind == "cron" and not n.outside
        upcoming = next_runs(n.step.config.cron, now) if cron else []
        nodes.append(
            DrawnNode(
                n.id,
                n.kind,
                n.label,
                subtitle(n),
                n.fault,
                n.open,
                n.outside,
                href(n),
                **vars(boxes[n.id]),
                description=description(n),
                next_run=upcoming[0] if upcoming else None,
                upcoming=upcoming,
            )
        )
    grouped = {}
    for edge in graph.edges:
        grouped.setdefault((edge.source, edge.target), []).append(edge)
    starts, ends = ports(grouped, boxes, 0), ports(grouped, boxes, 1)
    edges = []
    for (source, target), same in grouped.items():
        start, end = boxes[source], boxes[target]
        points = [
            (start.right, starts[(source, target)]),
            *placed.routes.get((source, target), []),
            (end.x, ends[(source, target)]),
        ]
        # The label sits by the edge's last stretch, which runs level into the target:
        # above it, or below it when the edge comes down from above.
        below = starts[(source, target)] < ends[(source, target)] - 1
        label_x, label_y = end.x - 12, ends[(source, target)] + (15 if below else -6)
        topics = sorted({e.topic for e in same})
        virtual = all(e.virtual for e in same)
        edges.append(
            DrawnEdge(
                source, target, topics, virtual, curve(points), label_x, label_y, points[-1][1]
            )
        )
    spread_labels(edges)
    return {
        "nodes": nodes,
        "edges": edges,
        "width": placed.width,
        "height": placed.height,
        # Scaled down to fit the page, but no smaller than this: text stays readable.
        "min_width": round(placed.width * MIN_SCALE),
    }


def flows():
    """Flow names for the dropdown, in the order their first steps were registered (the
    apps' order in INSTALLED_APPS, then their step files'): the first is the page's
    default."""
    found = {}
    for step in registry:
        for name in step.config.flows:
            found.setdefault(name, len(found))
    return sorted(found, key=found.get)
