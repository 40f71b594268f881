"""What ``startstep`` gives a new event step as input (workflow.scaffold_input): the
serializer its topic's subscribers declare, with a sample event that passes it; else the
topic's data as it is. And the step and test it renders from that (workflow.scaffold)."""

import pytest
from rest_framework import serializers

from workflow.scaffold import Spec, render_step
from workflow.scaffold_input import TopicInput, topic_input
from workflow.scaffold_tests import render_test
from workflow.steps import EventStep

AS_IS = "the stub takes the data as it is"


def handler(input, ctx):
    return None


class Address(serializers.Serializer):
    city = serializers.CharField(min_length=3, max_length=4)


class Order(serializers.Serializer):
    """Fields of many kinds, each given a sample that passes it."""

    orderId = serializers.CharField()
    email = serializers.EmailField()
    quantity = serializers.IntegerField(min_value=5)
    express = serializers.BooleanField()
    size = serializers.ChoiceField(choices=[("s", "Small"), ("l", "Large")])
    placedAt = serializers.DateTimeField()
    address = Address()
    tags = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField(required=False)
    total = serializers.IntegerField(read_only=True)


class Strict(serializers.Serializer):
    code = serializers.CharField()

    def validate_code(self, value):
        raise serializers.ValidationError("only codes from the catalogue")


def subscribe(steps, name, topic, input=None):
    steps.add(EventStep(name=name, subscribes=[topic], input=input), handler)


def test_the_serializer_a_subscriber_declares_with_a_sample_that_passes_it(steps):
    """The first subscriber's input is found (from the module it lives in); the sample
    has every required writable field, within its bounds; what the handler keeps and
    emits is the fields whose validated values are plain JSON (not placedAt, a datetime,
    nor the nested address)."""
    subscribe(steps, "Untyped", "order.placed")
    subscribe(steps, "Ship", "order.placed", Order)
    subscribe(steps, "Bill", "order.placed", Strict)
    found = topic_input(steps, ["order.placed"])
    assert (found.serializer, found.declared_by, found.note) == (Order, "Ship", "")
    assert found.serializer.__module__ == __name__
    assert found.sample == {
        "orderId": "orderId-1",
        "email": "user@example.com",
        "quantity": 5,
        "express": True,
        "size": "s",
        "placedAt": "2026-01-01T00:00:00Z",
        "address": {"city": "city"},
        "tags": [],
    }
    assert found.received == {
        "orderId": "orderId-1",
        "email": "user@example.com",
        "quantity": 5,
        "express": True,
        "size": "s",
    }
    assert found.required == "orderId"


def test_no_declared_input_is_the_data_as_it_is(steps):
    """A topic whose subscribers declare no input (or a wildcard only): no serializer,
    nothing required, nothing to say."""
    subscribe(steps, "Untyped", "order.placed")
    subscribe(steps, "Audit", "*", Order)
    assert topic_input(steps, ["order.placed"]) == TopicInput()
    assert topic_input(steps, ["nobody.subscribes"]) == TopicInput()
    assert topic_input(steps, ["*"]) == TopicInput()


def test_topics_with_different_inputs_are_taken_as_they_are_saying_why(steps):
    """Two topics whose subscribers declare different inputs (or one none): no single
    serializer fits both, so the data as it is, and the note says so."""
    subscribe(steps, "Ship", "order.placed", Order)
    subscribe(steps, "Check", "code.sent", Strict)
    subscribe(steps, "Untyped", "untyped")
    for topics in (["order.placed", "code.sent"], ["order.placed", "untyped"]):
        found = topic_input(steps, topics)
        assert found.serializer is None
        shown = ", ".join(sorted(topics))
        assert found.note == f"no one input is declared for all of {shown}; {AS_IS}"


def test_a_serializer_no_sample_passes_is_not_used_and_the_note_says_why(steps):
    """Strict's own validation refuses the sample: the data as it is, with the reason."""
    subscribe(steps, "Check", "code.sent", Strict)
    found = topic_input(steps, ["code.sent"])
    assert found.serializer is None
    assert "no sample event passes Strict" in found.note
    assert "only codes from the catalogue" in found.note


def test_an_input_that_cannot_be_imported_is_skipped(steps):
    """A serializer instance (many=True) or a class made in a function has no import
    line: the next subscriber's input is taken."""

    class Local(serializers.Serializer):
        name = serializers.CharField()

    subscribe(steps, "Many", "order.placed", Order(many=True))
    subscribe(steps, "Local", "order.placed", Local)
    subscribe(steps, "Ship", "order.placed", Order)
    assert topic_input(steps, ["order.placed"]).serializer is Order


@pytest.fixture
def spec(steps):
    """A step NotifyShop subscribing to order.placed, whose subscriber Ship takes Order."""
    subscribe(steps, "Ship", "order.placed", Order)
    made = Spec("shop", "NotifyShop", "event", "d", ["shop"], ["shop.notified"], ["order.placed"])
    made.input = topic_input(steps, made.subscribes)
    return made


def test_the_stub_imports_the_declared_input_and_keeps_its_plain_fields(spec):
    """The step imports Order from its module, declares it as input, keeps and emits the
    plain fields it received, and invents none; its test sends the sample."""
    step = render_step(spec)
    imports = "from workflow.handlers import Context\nfrom workflow.steps import EventStep\n"
    assert f"from {__name__} import Order\n{imports}" in step
    assert "    input=Order,\n" in step
    assert '        "orderId": input["orderId"],\n' in step
    assert "placedAt" not in step and "message" not in step
    assert '    ctx.emit("shop.notified", received)\n' in step
    compile(step, "notify_shop_step.py", "exec")
    test = render_test(spec, "shop/steps/notify_shop_step.py")
    assert '    "placedAt": "2026-01-01T00:00:00Z",\n' in test
    assert 'with pytest.raises(InvalidInput, match="orderId"):' in test
    compile(test, "test_notify_shop_step.py", "exec")


def test_a_stub_without_a_declared_input_takes_the_data_as_it_is(steps):
    """No input declared: no serializer and no required field; the handler keeps and
    emits its input as it came, and its test has no refusal to check."""
    made = Spec("shop", "Tally", "event", "d", ["shop"], ["tallied"], ["order.placed"])
    made.input = topic_input(steps, made.subscribes)
    step = render_step(made)
    assert "    input=" not in step and "serializers" not in step
    assert '    ctx.emit("tallied", input)\n' in step
    test = render_test(made, "shop/steps/tally_step.py")
    assert "InvalidInput" not in test and "RECEIVED = INPUT\n" in test
