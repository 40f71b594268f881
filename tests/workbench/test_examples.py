"""The Endpoints form's prefilled body passes the step's body schema: each field gets a
value of its kind within its limits (``workbench.examples``, ``workbench.patterns``)."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.validators import RegexValidator
from rest_framework import serializers

from workbench import patterns
from workbench.examples import example_body
from workflow.registry import registry
from workflow.schemas import validate


def one_field(field):
    """A serializer class whose one field, ``value``, is ``field``."""
    return type("One", (serializers.Serializer,), {"value": field})


FIELDS = {
    "char": (serializers.CharField(), "string"),
    "char with a min length": (serializers.CharField(min_length=8, max_length=10), "string01"),
    "char with a short max length": (serializers.CharField(max_length=3), "str"),
    "email": (serializers.EmailField(), "user@example.com"),
    "email with a short max length": (serializers.EmailField(max_length=10), "a@b.co"),
    "email with a long min length": (
        serializers.EmailField(min_length=20),
        "userxxxx@example.com",
    ),
    "url": (serializers.URLField(), "https://example.com/"),
    "regex": (serializers.RegexField(r"^\d{5}(-\d{4})?$"), "00000-0000"),
    "regex validator and a min length": (
        serializers.CharField(min_length=10, validators=[RegexValidator(r"^[a-z]+$")]),
        "a" * 12,
    ),
    "slug": (serializers.SlugField(), "string"),
    "ip address": (serializers.IPAddressField(), "192.0.2.1"),
    "ipv6 address": (serializers.IPAddressField(protocol="IPv6"), "2001:db8::1"),
    "integer with a min value": (serializers.IntegerField(min_value=5), 5),
    "integer with a max value below zero": (serializers.IntegerField(max_value=-3), -3),
    "float with a min value": (serializers.FloatField(min_value=0.5), 0.5),
    "decimal with a min value": (
        serializers.DecimalField(max_digits=5, decimal_places=2, min_value=Decimal("1.25")),
        "1.25",
    ),
    "decimal written as a number": (
        serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False),
        0.0,
    ),
    "boolean": (serializers.BooleanField(), False),
    "choice (the first that is not blank)": (
        serializers.ChoiceField(choices=[("", "none"), ("gold", "Gold")], allow_blank=True),
        "gold",
    ),
    "choice of numbers": (serializers.ChoiceField(choices=[(3, "three"), (4, "four")]), 3),
    "multiple choice": (
        serializers.MultipleChoiceField(choices=["a", "b"], allow_empty=False),
        ["a"],
    ),
    "datetime": (serializers.DateTimeField(), "2026-01-01T09:00:00Z"),
    "date in its own input format": (
        serializers.DateField(input_formats=["%d/%m/%Y"]),
        "01/01/2026",
    ),
    "time": (serializers.TimeField(), "09:00:00"),
    "duration with a min value": (
        serializers.DurationField(min_value=timedelta(minutes=5)),
        "00:05:00",
    ),
    "uuid": (serializers.UUIDField(), "00000000-0000-0000-0000-000000000000"),
    "list with a min length": (
        serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=3),
        [1, 1, 1],
    ),
    "list of emails": (
        serializers.ListField(child=serializers.EmailField()),
        ["user@example.com"],
    ),
    "dict": (serializers.DictField(child=serializers.IntegerField(min_value=2)), {"key": 2}),
    "json": (serializers.JSONField(), {}),
    "declared initial": (serializers.CharField(initial="Ada", min_length=2), "Ada"),
    "declared initial that fails its own limits": (
        serializers.CharField(initial="A", min_length=2),
        "string",
    ),
    "declared default": (serializers.IntegerField(default=7, min_value=1), 7),
}


@pytest.mark.parametrize("field, expected", FIELDS.values(), ids=FIELDS.keys())
def test_each_kind_of_field_gets_a_value_it_accepts(field, expected):
    """A field's example is of its kind, within its limits, and passes the schema."""
    schema = one_field(field)
    body = example_body(schema)
    assert body == {"value": expected}
    validate(schema, body)


class Address(serializers.Serializer):
    street = serializers.CharField(min_length=3)
    zip = serializers.RegexField(r"^\d{5}$")


class Order(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    owner = serializers.HiddenField(default="shop")
    ship_to = Address()
    stops = Address(many=True, min_length=2)


def test_nested_serializers_and_lists_of_them_are_filled_field_by_field():
    """A nested serializer is an object of examples, a list of them has its min length;
    read-only and hidden fields are left out (a client does not send them)."""
    address = {"street": "string", "zip": "00000"}
    body = example_body(Order)
    assert body == {"ship_to": address, "stops": [address, address]}
    validate(Order, body)


def test_a_list_schema_gives_a_list_body():
    """A body schema declared many=True gives a list of one example object."""
    assert example_body(Address(many=True)) == [{"street": "string", "zip": "00000"}]


def test_every_api_step_of_the_project_gets_a_body_its_schema_accepts():
    """For each API step shipped with the project, the prefilled body validates against
    its body schema (RegisterUser: a password of 8 characters or more)."""
    with_body = [step for step in registry.of_type("api") if step.config.body_schema]
    assert "RegisterUser" in {step.name for step in with_body}
    for step in with_body:
        body = example_body(step.config.body_schema)
        validate(step.config.body_schema, body)  # raises, naming the field, if not


@pytest.mark.parametrize(
    "pattern",
    [
        r"^[a-z0-9-]+\d{3}(?:x|y)$",
        r"^\+?1?\d{9,15}$",
        r"^(?P<word>[A-Z][a-z]+)-(?P=word)$",
        r"[^a-z]{2,}",
        r"(?i)^id_\w{4}\Z",
        r"^(red|green|blue)\.(png|jpe?g)$",
    ],
)
def test_every_string_made_from_a_pattern_matches_it(pattern):
    """patterns.matches(): each string it makes (repeats taken more and more times)
    matches the pattern."""
    made = list(patterns.matches(re.compile(pattern)))
    assert made and all(re.search(pattern, text) for text in made), made
