"""/api/asyncapi.json: each event topic, the schema of the data it carries, its emitters
and its subscribers, as an AsyncAPI 3 document."""

import jsonschema
import pytest
from rest_framework import serializers

from workflow.models import Event
from workflow.registry import registry as project_registry
from workflow.steps import ApiStep, EventStep
from workflow.topics import is_pattern


def document_of(api):
    response = api.get("/api/asyncapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def validator_for(document, topic):
    """A JSON Schema validator of ``topic``'s payload, its $refs resolved in the document."""
    payload = document["channels"][topic]["messages"]["event"]["payload"]
    return jsonschema.Draft7Validator({**payload, "components": document["components"]})


def refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document, ref):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_topic_of_the_project_is_a_channel_with_its_emitters_and_subscribers(api):
    """Each topic the steps emit or subscribe to is a channel; emitters are send
    operations, subscribers receive operations; every $ref resolves."""
    document = document_of(api)
    assert document["asyncapi"] == "3.0.0"
    expected = set()
    for step in project_registry:  # topics by name (a pattern is no channel)
        expected |= step.config.emit_topics
        expected |= {t for t in step.config.subscribe_topics if not is_pattern(t)}
    assert set(document["channels"]) == expected
    for topic in expected:
        assert document["channels"][topic]["address"] == topic
        senders = {
            op["title"]
            for op in document["operations"].values()
            if op["action"] == "send" and op["channel"]["$ref"] == f"#/channels/{topic}"
        }
        receivers = {
            op["title"]
            for op in document["operations"].values()
            if op["action"] == "receive" and op["channel"]["$ref"] == f"#/channels/{topic}"
        }
        assert senders == {s.name for s in project_registry if topic in s.config.emit_topics}
        assert receivers == {s.name for s in project_registry.subscribers(topic)}
    for ref in refs(document):
        assert resolve(document, ref) is not None


@pytest.mark.django_db
def test_real_event_data_validates_against_its_topics_payload_schema(api):
    """The data RegisterUser really emits on user.registered passes the channel's payload
    schema (the subscribers' input), and data missing a field does not."""
    response = api.post(
        "/users/register",
        {"name": "Ann Lee", "email": "ann@example.com", "password": "long enough pw"},
        format="json",
    )
    assert response.status_code == 201
    data = Event.objects.get(topic="user.registered").data
    validator = validator_for(document_of(api), "user.registered")
    assert list(validator.iter_errors(data)) == []
    broken = {k: v for k, v in data.items() if k != "userId"}
    assert [e.message for e in validator.iter_errors(broken)] == ["'userId' is a required property"]


class Amount(serializers.Serializer):
    orderId = serializers.CharField()
    cents = serializers.IntegerField(min_value=0)


class Coupon(serializers.Serializer):
    code = serializers.CharField(allow_null=True)


def nothing(input, ctx):
    return None


@pytest.fixture
def shop(steps):
    steps.add(
        ApiStep(name="Pay", method="POST", path="/pay", emits=["paid"], virtual_emits=["audit"]),
        lambda request, ctx: {"status": 200},
    )
    steps.add(EventStep(name="Book", subscribes=["paid"], input=Amount, emits=["booked"]), nothing)
    steps.add(EventStep(name="Discount", subscribes=["paid"], input=Coupon), nothing)
    steps.add(EventStep(name="Audit", subscribes=["*"], flows=["ops"]), nothing)
    return steps


def test_subscribers_inputs_combine_and_wildcards_receive_every_topic(api, shop):
    """Data on a topic must pass every subscriber's input (allOf); a nullable field
    accepts null; a '*' subscriber receives every topic; a topic no step subscribes to
    with an input carries any data; virtual emits are not channels."""
    document = document_of(api)
    assert set(document["channels"]) == {"paid", "booked"}
    paid = validator_for(document, "paid")
    assert list(paid.iter_errors({"orderId": "o1", "cents": 5, "code": None})) == []
    assert not paid.is_valid({"orderId": "o1", "cents": 5})  # Coupon's code missing
    assert not paid.is_valid({"orderId": "o1", "cents": -1, "code": "X"})
    assert validator_for(document, "booked").is_valid({"anything": [1, 2]})
    operations = document["operations"]
    assert {op["title"] for op in operations.values() if op["action"] == "receive"} == {
        "Book",
        "Discount",
        "Audit",
    }
    audit = [op for op in operations.values() if op["title"] == "Audit"]
    assert sorted(op["channel"]["$ref"] for op in audit) == ["#/channels/booked", "#/channels/paid"]
    assert audit[0]["tags"] == [{"name": "ops"}]
    assert "Pay" in document["channels"]["paid"]["description"]
