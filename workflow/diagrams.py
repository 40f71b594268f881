"""The step graph (``workflow.graph``) written out: text, JSON, Mermaid or Graphviz dot.

    print(render(flow_graph(registry, "user-registration"), "mermaid"))

Nodes are steps (with their type) and, for faults, topics: an emit no step subscribes
to ends at an ``unheard`` topic node, a subscription to a topic no step emits starts
at an ``unsent`` one. An emit declared open ends at an ``open`` topic node, which is no
fault. A step of another flow at the far end of a topic is drawn apart, with its flow.
Edges carry their topic; virtual edges are marked.
"""

import json

FAULTS = {
    "unheard": "emitted, but no step subscribes to it",
    "unsent": "subscribed to, but no step emits it",
}


def step_detail(step):
    """What a step's card says under its name: ``POST /users/register``, a cron, ..."""
    config = step.config
    if config.type == "api":
        return f"{config.method} {config.path}"
    if config.type == "cron":
        return f"cron {config.cron}"
    return event_summary(config)


def event_summary(config):
    """An event step's card line: its join and its flow control, e.g. ``joins by
    bookingId within 30 s``, ``concurrency 1 per userId, rate 5/1s``; "" for neither."""
    parts = []
    if getattr(config, "join", None):
        parts.append(f"joins by {config.join['key']} within {config.join['timeout']:g} s")
    if flow := getattr(config, "flow_control", None):
        parts += flow.describe()
    return ", ".join(parts)


def where(node):
    """A step of another flow, said with its flows: ``flow billing``, ``no flow``."""
    flows = node.flows
    if not flows:
        return "no flow"
    return f"flow{'s' * (len(flows) > 1)} {', '.join(flows)}"


def faults(graph):
    """``[(step, topic, fault)]``: each emit nobody hears and each subscription nobody sends."""
    found = []
    for edge in graph.edges:
        for node_id, other in ((edge.target, edge.source), (edge.source, edge.target)):
            node = graph.node(node_id)
            if node.fault:
                found.append((other, node.label, node.fault))
    return found


def in_flow_order(graph):
    """The step nodes in reading order: each entry point (nothing in the graph leads to
    it; those that lead somewhere first), then the steps it leads to, breadth first."""
    steps = [n.id for n in graph.nodes if n.step and not n.outside]
    after = {node_id: [] for node_id in steps}
    fed = set()
    for edge in graph.edges:
        if edge.source in after and edge.target in after and edge.source != edge.target:
            after[edge.source].append(edge.target)
            fed.add(edge.target)
    roots = sorted((s for s in steps if s not in fed), key=lambda s: not after[s])
    order = []
    for root in roots + steps:  # steps only in a cycle are reached from themselves
        queue = [root]
        while queue:
            node_id = queue.pop(0)
            if node_id not in order:
                order.append(node_id)
                queue += after[node_id]
    return [graph.node(node_id) for node_id in order]


def to_dict(graph):
    def node(n):
        step = {"type": n.kind, "description": n.step.config.description} if n.step else {}
        if n.step and step_detail(n.step):
            step["detail"] = step_detail(n.step)
        if n.step:
            step["flows"] = list(n.step.config.flows)
        marks = {"fault": n.fault, "open": n.open, "outside": n.outside}
        return {"id": n.id, "kind": n.kind, "label": n.label, **marks, **step}

    return {
        "flow": graph.flow or None,
        "nodes": [node(n) for n in graph.nodes],
        "edges": [
            {
                "source": e.source,
                "target": e.target,
                "topic": e.topic,
                "virtual": e.virtual,
                "label": e.label,
                "conditional": e.conditional,
            }
            for e in graph.edges
        ],
        "faults": [
            {"step": step, "topic": topic, "fault": fault} for step, topic, fault in faults(graph)
        ],
    }


def render_json(graph):
    return json.dumps(to_dict(graph), indent=2)


def _far_end(node):
    """How the text names the node at an edge's other end."""
    if node.fault:
        return f"! nobody ({node.fault})"
    if node.open:
        return "(open end)"
    if node.outside:
        return f"{node.label} ({where(node)})"
    return node.label


def _edge_lines(graph, node):
    """A step's edges as text: first those from steps of other flows, then its own."""
    coming = [(e, "<--", "--", e.source) for e in graph.edges if e.target == node.id]
    coming = [line for line in coming if graph.node(line[3]).outside]
    going = [(e, "--", "-->", e.target) for e in graph.edges if e.source == node.id]
    lines = []
    for edge, before, after, far in coming + going:
        marks = " (virtual)" * edge.virtual + f" [{edge.label}]" * bool(edge.label)
        lines.append(f"    {before}{edge.topic}{after} {_far_end(graph.node(far))}{marks}")
    return lines


def render_text(graph):
    steps = in_flow_order(graph)
    title = f"flow {graph.flow}" if graph.flow else "all steps"
    lines = [f"{title}: {len(steps)} step{'s' * (len(steps) != 1)}"]
    for node in steps:
        detail = step_detail(node.step)
        lines.append(f"  {node.label} [{node.kind}]" + (f" {detail}" if detail else ""))
        lines += _edge_lines(graph, node)
    found = faults(graph)
    lines.append(f"faults: {len(found)}" if found else "faults: none")
    for step, topic, fault in found:
        lines.append(f"  ! {step}: {topic!r} is {FAULTS[fault]} ({fault})")
    return "\n".join(lines)


def _ids(graph):
    """Safe node ids for Mermaid and dot (step names may hold '.' and '-')."""
    return {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}


def _mermaid_text(text):
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")


MERMAID_CLASSES = {
    "fault": "fill:#fde2e1,stroke:#ba2121,color:#ba2121",
    "open": "fill:#f4f4f4,stroke:#777,stroke-dasharray:5 5,color:#555",
    "outside": "fill:#f4f4f4,stroke:#777,stroke-dasharray:5 5",
}


def _mermaid_class(node):
    """The Mermaid class of a node drawn apart (a fault, an open end, another flow's step)."""
    return "fault" if node.fault else "open" if node.open else "outside" if node.outside else ""


def render_mermaid(graph):
    ids = _ids(graph)
    lines = ["flowchart LR"]
    for node in graph.nodes:
        style = f":::{_mermaid_class(node)}" if _mermaid_class(node) else ""
        if node.step:
            detail = where(node) if node.outside else step_detail(node.step)
            detail = " ".join(filter(None, [node.kind, detail]))
            label = f"{_mermaid_text(node.label)}<br/>{_mermaid_text(detail)}"
            lines.append(f'  {ids[node.id]}["{label}"]{style}')
        else:
            label = f"{node.label} ({node.fault or 'open'})"
            lines.append(f'  {ids[node.id]}(["{_mermaid_text(label)}"]){style}')
    for edge in graph.edges:
        arrow = "-.->" if edge.virtual else "-->"
        topic = _mermaid_text(edge.topic).replace("|", "#124;")
        lines.append(f"  {ids[edge.source]} {arrow}|{topic}| {ids[edge.target]}")
    used = {_mermaid_class(node) for node in graph.nodes}
    for name, style in MERMAID_CLASSES.items():
        if name in used:
            lines.append(f"  classDef {name} {style}")
    return "\n".join(lines)


def _dot_text(*lines):
    """A quoted dot string of ``lines`` (joined by dot's line break)."""
    escaped = [line.replace("\\", "\\\\").replace('"', '\\"') for line in lines]
    return '"' + "\\n".join(escaped) + '"'


def render_dot(graph):
    ids = _ids(graph)
    name = graph.flow or "steps"
    lines = [f"digraph {_dot_text(name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for node in graph.nodes:
        if node.step:
            detail = where(node) if node.outside else step_detail(node.step)
            detail = " ".join(filter(None, [node.kind, detail]))
            style = ', style=dashed, color="#777777"' if node.outside else ""
            lines.append(f"  {ids[node.id]} [label={_dot_text(node.label, detail)}{style}];")
        else:
            label = _dot_text(node.label, f"({node.fault or 'open'})")
            color = "#ba2121" if node.fault else "#777777"
            lines.append(
                f"  {ids[node.id]} [label={label}, shape=ellipse, style=dashed, "
                f'color="{color}", fontcolor="{color}"];'
            )
    for edge in graph.edges:
        style = ", style=dashed" if edge.virtual else ""
        lines.append(
            f"  {ids[edge.source]} -> {ids[edge.target]} [label={_dot_text(edge.topic)}{style}];"
        )
    lines.append("}")
    return "\n".join(lines)


RENDERERS = {
    "text": render_text,
    "json": render_json,
    "mermaid": render_mermaid,
    "dot": render_dot,
}


def render(graph, format="text"):
    return RENDERERS[format](graph)
