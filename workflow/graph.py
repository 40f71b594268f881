"""The step graph of a flow, derived from the registry alone (no runtime data).

    graph = flow_graph(registry, "user-registration")
    graph.nodes   # steps, plus topic nodes for emits nobody subscribes to (and back)
    graph.edges   # one per (emitter, topic, subscriber); virtual ones marked

An emit with no subscriber in the flow ends at a ``topic`` node marked as a fault
(``unheard``); a subscription to a topic no step of the flow emits starts at one
(``unsent``), so nothing declared is left out of the picture.
"""

from dataclasses import dataclass, field

from .registry import WILDCARD


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # api, event, cron, noop, or topic
    label: str
    step: object = None  # the RegisteredStep; None for topic nodes
    fault: str = ""  # topic nodes: "unheard" (no subscriber) or "unsent" (no emitter)


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
    graph = Graph(flow or "")
    graph.nodes = [Node(s.name, s.type, s.name, step=s) for s in steps]
    heard = set()
    for source in steps:
        for emit, virtual_emit in _emits(source):
            targets = [
                (target, virtual)
                for target in steps
                for topic, virtual in _subscriptions(target).items()
                if topic in (emit.topic, WILDCARD)
            ]
            for target, virtual_subscribe in targets:
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
                heard.add((target.name, emit.topic))
            if not targets:
                _topic_edge(graph, source.name, emit, virtual_emit, "unheard")
    for target in steps:
        for topic, virtual in _subscriptions(target).items():
            if topic != WILDCARD and (target.name, topic) not in heard:
                node = _topic_node(graph, topic, "unsent")
                graph.edges.append(Edge(node.id, target.name, topic, virtual=virtual))
    return graph


def _topic_node(graph, topic, fault):
    node_id = f"topic:{fault}:{topic}"
    node = graph.node(node_id)
    if node is None:
        node = Node(node_id, "topic", topic, fault=fault)
        graph.nodes.append(node)
    return node


def _topic_edge(graph, source, emit, virtual, fault):
    node = _topic_node(graph, emit.topic, fault)
    graph.edges.append(Edge(source, node.id, emit.topic, virtual, emit.label, emit.conditional))
