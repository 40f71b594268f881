"""The step graph of a flow, derived from the registry alone (no runtime data).

    graph = flow_graph(registry, "user-registration")
    graph.nodes   # steps, plus topic nodes for emits nobody subscribes to (and back)
    graph.edges   # one per (emitter, topic, subscriber); virtual ones marked

A flow is a view, not a boundary: a topic that crosses into or out of the flow is an
edge from or to the step of the other flow, drawn as a node marked ``outside``. An emit
with no subscriber anywhere ends at a ``topic`` node: a fault (``unheard``), or an open
end when the emit is declared ``open``; a subscription to a topic no step emits starts
at one marked ``unsent``. So nothing declared is left out of the picture.
"""

from dataclasses import dataclass, field

from .topics import is_catch_all, matches


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # api, event, cron, noop, or topic
    label: str
    step: object = None  # the RegisteredStep; None for topic nodes
    fault: str = ""  # topic nodes: "unheard" (no subscriber) or "unsent" (no emitter)
    open: bool = False  # a topic node for an emit declared open: no fault
    outside: bool = False  # a step of another flow, at the far end of a topic

    @property
    def flows(self):
        return tuple(self.step.config.flows) if self.step else ()


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    topic: str
    virtual: bool = False
    label: str = ""
    conditional: bool = False


@dataclass
class Graph:
    flow: str
    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)

    def node(self, node_id):
        return next((n for n in self.nodes if n.id == node_id), None)


def _emits(step):
    for emit in step.config.emits:
        yield emit, False
    for emit in step.config.virtual_emits:
        yield emit, True


def _subscriptions(step):
    """``{topic: virtual}`` for the topics ``step`` listens to."""
    topics = {topic: True for topic in step.config.virtual_subscribes}
    topics.update({topic: False for topic in step.config.subscribe_topics})
    return topics


def flow_steps(reg, flow=None):
    """The steps of ``flow`` (every step when None), in registration order."""
    return [step for step in reg if flow is None or flow in step.config.flows]


def flow_graph(reg, flow=None):
    steps = flow_steps(reg, flow)
    members = {step.name for step in steps}
    graph = Graph(flow or "")
    graph.nodes = [Node(s.name, s.type, s.name, step=s) for s in steps]
    for source in steps:
        for emit, virtual_emit in _emits(source):
            targets = _subscribers(reg, emit.topic)
            for target, virtual_subscribe in targets:
                if target.name not in members:
                    _outside_node(graph, target)
                graph.edges.append(
                    Edge(
                        source.name,
                        target.name,
                        emit.topic,
                        virtual=virtual_emit or virtual_subscribe,
                        label=emit.label,
                        conditional=emit.conditional,
                    )
                )
            if not targets:
                _topic_edge(graph, source.name, emit, virtual_emit)
    for target in steps:
        for topic, virtual_subscribe in _subscriptions(target).items():
            if not is_catch_all(topic):
                _edges_into(graph, reg, members, target, topic, virtual_subscribe)
    return graph


def _subscribers(reg, topic):
    """``[(step, virtual)]``: every step, in any flow, that listens to ``topic`` (by
    name or by a pattern that matches it), once; virtual when only virtually."""
    found = []
    for step in reg:
        matching = [
            v for subscribed, v in _subscriptions(step).items() if matches(subscribed, topic)
        ]
        if matching:
            found.append((step, all(matching)))
    return found


def _edges_into(graph, reg, members, target, topic, virtual_subscribe):
    """The edges into ``target`` for ``topic`` from steps of other flows (those from the
    flow's own steps are drawn from their side), or from an ``unsent`` topic node when
    no step anywhere emits it."""
    senders = [(step, emit, virtual) for step in reg for emit, virtual in _emits(step)]
    senders = [sender for sender in senders if matches(topic, sender[1].topic)]
    for source, emit, virtual_emit in senders:
        if source.name not in members:
            _outside_node(graph, source)
            virtual = virtual_emit or virtual_subscribe
            graph.edges.append(
                Edge(source.name, target.name, emit.topic, virtual, emit.label, emit.conditional)
            )
    if not senders:
        node = _topic_node(graph, topic, fault="unsent")
        graph.edges.append(Edge(node.id, target.name, topic, virtual=virtual_subscribe))


def _outside_node(graph, step):
    if graph.node(step.name) is None:
        graph.nodes.append(Node(step.name, step.type, step.name, step=step, outside=True))


def _topic_node(graph, topic, fault="", open=False):
    node_id = f"topic:{fault or 'open'}:{topic}"
    node = graph.node(node_id)
    if node is None:
        node = Node(node_id, "topic", topic, fault=fault, open=open)
        graph.nodes.append(node)
    return node


def _topic_edge(graph, source, emit, virtual):
    """An emit nobody subscribes to: to an open end if declared so, else to a fault."""
    if emit.open:
        node = _topic_node(graph, emit.topic, open=True)
    else:
        node = _topic_node(graph, emit.topic, fault="unheard")
    graph.edges.append(Edge(source, node.id, emit.topic, virtual, emit.label, emit.conditional))
