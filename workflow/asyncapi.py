"""The event topics as an AsyncAPI 3 document: what each topic carries, who emits it,
who receives it.

One channel per topic (its id and address are the topic name) with one message whose
``payload`` is the JSON Schema of the event data: the ``input`` serializer of the
topic's subscribers (``allOf`` when subscribers declare different ones, since the data
must pass each of them; ``{}`` when none declares one). Each step that emits a topic
is a ``send`` operation on its channel, each subscriber a ``receive`` operation
(``"*"`` subscribers receive every topic). Schemas are mapped by drf-spectacular, as
for the OpenAPI document, then made plain JSON Schema (``nullable`` becomes a
``"null"`` type). Virtual emits and subscribes are drawn in the graph, never sent,
so they are left out.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ComponentRegistry
from drf_spectacular.settings import spectacular_settings
from rest_framework.serializers import ListSerializer
from rest_framework.views import APIView

from .registry import registry
from .topics import is_pattern

VERSION = "3.0.0"
CONTENT_TYPE = "application/json"


def pointer(*parts):
    """A local JSON pointer to ``parts`` (escaping '~' and '/' in names)."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return {"$ref": "#/" + "/".join(escaped)}


class SchemaMapper:
    """Serializers to JSON Schema components, through drf-spectacular's AutoSchema."""

    def __init__(self):
        self.auto = AutoSchema()
        view = APIView()
        view.request = None
        self.auto.view = view
        self.auto.registry = ComponentRegistry()
        self.auto.method, self.auto.path = "POST", "/"

    def ref(self, schema):
        """The ``$ref`` of ``schema``'s component (an array of it for ``many=True``)."""
        many = isinstance(schema, ListSerializer)
        component = self.auto.resolve_serializer(schema.child if many else schema, "request")
        if not component:  # a serializer without fields: any object
            return {"type": "array", "items": {}} if many else {"type": "object"}
        return {"type": "array", "items": component.ref} if many else component.ref

    def components(self):
        return json_schema(self.auto.registry.build({}).get("schemas", {}))


def json_schema(node):
    """OpenAPI 3.0 schema objects as JSON Schema: ``nullable: true`` adds a null type."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        else:
            node = {"oneOf": [node, {"type": "null"}]}
    return node


def topics(reg):
    """Every topic a step emits or subscribes to by name (not by a pattern), sorted."""
    names = set()
    for step in reg:
        names |= step.config.emit_topics
        names |= {t for t in step.config.subscribe_topics if not is_pattern(t)}
    return sorted(names)


def payload(mapper, subscribers):
    inputs = []
    for step in subscribers:
        schema = getattr(step.config, "input", None)
        if schema is not None and schema not in inputs:
            inputs.append(schema)
    if not inputs:
        return {"description": "No subscriber declares an input schema: any JSON value."}
    refs = [mapper.ref(schema) for schema in inputs]
    return refs[0] if len(refs) == 1 else {"allOf": refs}


def operation(action, step, topic):
    op = {
        "action": action,
        "channel": pointer("channels", topic),
        "messages": [pointer("channels", topic, "messages", "event")],
        "title": step.name,
    }
    if step.config.description:
        op["summary"] = step.config.description
    if step.config.flows:
        op["tags"] = [{"name": flow} for flow in step.config.flows]
    return op


def channel(topic, emitters, subscribers, message):
    sent = ", ".join(s.name for s in emitters) or "no step (only from outside)"
    received = ", ".join(s.name for s in subscribers) or "no step"
    return {
        "address": topic,
        "title": topic,
        "description": f"Emitted by {sent}; delivered to {received}.",
        "messages": {"event": message},
    }


def asyncapi_document(reg=None):
    """The AsyncAPI 3 document of ``reg``'s topics (the project's registry by default)."""
    reg = registry if reg is None else reg
    mapper = SchemaMapper()
    channels, operations = {}, {}
    for topic in topics(reg):
        emitters = [step for step in reg if topic in step.config.emit_topics]
        subscribers = reg.subscribers(topic)
        message = {
            "name": topic,
            "title": topic,
            "contentType": CONTENT_TYPE,
            "payload": payload(mapper, subscribers),
        }
        channels[topic] = channel(topic, emitters, subscribers, message)
        for step in emitters:
            operations[f"{step.name}.send.{topic}"] = operation("send", step, topic)
        for step in subscribers:
            operations[f"{step.name}.receive.{topic}"] = operation("receive", step, topic)
    return {
        "asyncapi": VERSION,
        "info": {
            "title": f"{spectacular_settings.TITLE} events",
            "version": spectacular_settings.VERSION or "0",
            "description": "Event topics of the step graph and the data each carries.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": mapper.components()},
    }
