"""Step schemas are strict about JSON types: each field type takes its own JSON type,
refuses the values DRF would coerce, in DRF's words and error shape; query parameters
keep DRF's parsing; ``Meta.coerce_fields`` hands fields back to DRF."""

import types

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import include, path
from rest_framework import serializers
from rest_framework.deprecation import RemovedInDRF320Warning
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

import workflow.urls  # noqa: F401  (routes are built from the real registry, before any swap)
from workflow.schemas import validate
from workflow.steps import ApiStep
from workflow.strict import DECIMAL_STRING
from workflow.views import view_for

DURATION = (
    "Duration has wrong format. Use one of these formats instead: [DD] [HH:[MM:]]ss[.uuuuuu]."
)
ID = "00000000-0000-0000-0000-000000000001"

# (field, values it takes, values DRF would coerce that it refuses, the message)
CASES = {
    "char": (serializers.CharField(), ["text"], [12345, 1.5], "Not a valid string."),
    "slug": (
        serializers.SlugField(),
        ["a-slug"],
        [12],
        'Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.',
    ),
    "regex": (
        serializers.RegexField(r"^\d+$"),
        ["123"],
        [123],
        "This value does not match the required pattern.",
    ),
    "uuid": (serializers.UUIDField(), [ID], [1], "Must be a valid UUID."),
    "integer": (
        serializers.IntegerField(),
        [3, -1, 0],
        ["3", 3.0, "3.0"],
        "A valid integer is required.",
    ),
    "float": (serializers.FloatField(), [1.5, 2], ["1.5", True], "A valid number is required."),
    "decimal": (
        serializers.DecimalField(max_digits=5, decimal_places=2),
        ["12.50", "3"],
        [12.5, 12],
        DECIMAL_STRING,
    ),
    "decimal as a number": (
        serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False),
        [12.5, 12],
        ["12.50"],
        "A valid number is required.",
    ),
    "boolean": (
        serializers.BooleanField(),
        [True, False],
        ["yes", "true", "1", 1, 0],
        "Must be a valid boolean.",
    ),
    "nullable boolean": (
        serializers.BooleanField(allow_null=True),
        [True, None],
        ["null", ""],
        "Must be a valid boolean.",
    ),
    "integer choice": (
        serializers.ChoiceField(choices=[1, 2]),
        [1, 2],
        ["1"],
        '"1" is not a valid choice.',
    ),
    "text choice": (
        serializers.ChoiceField(choices=["1", "2"]),
        ["1"],
        [1],
        '"1" is not a valid choice.',
    ),
    "multiple choice": (
        serializers.MultipleChoiceField(choices=["1", "2"]),
        [["1", "2"], []],
        [[1]],
        '"1" is not a valid choice.',
    ),
    "multiple choice, not a list": (
        serializers.MultipleChoiceField(choices=["a"]),
        [["a"]],
        [{"a": 1}],
        'Expected a list of items but got type "dict".',
    ),
    "duration": (serializers.DurationField(), ["00:01:00"], [60], DURATION),
}


def schema_of(field):
    """A serializer whose one field, ``value``, is ``field``."""
    return type("One", (serializers.Serializer,), {"value": field})


def refusal(schema, data):
    with pytest.raises(ValidationError) as caught:
        validate(schema, data)
    return caught.value.detail


@pytest.mark.parametrize("kind", CASES)
def test_a_field_takes_its_json_type_and_refuses_what_drf_would_coerce(kind):
    """Each field type takes values of its JSON type, as DRF validates them, and refuses
    a value of another JSON type with the field's own message, though DRF alone would
    coerce it (12345 to "12345", "3" to 3, "yes" to True, 1 to a UUID...)."""
    field, taken, refused, message = CASES[kind]
    for value in taken:
        assert "value" in validate(schema_of(field), {"value": value})
    for value in refused:
        assert refusal(schema_of(field), {"value": value}) == {"value": [message]}, value


def test_a_field_declared_message_is_the_one_given():
    """A field that declares its own "invalid" message gives it for a wrong type, as
    DRF gives it for a value it cannot read."""
    field = serializers.CharField(error_messages={"invalid": "Name must be text"})
    assert refusal(schema_of(field), {"value": 12}) == {"value": ["Name must be text"]}


def test_list_and_dict_fields_check_each_item_by_their_child():
    """A ListField's items and a DictField's values are checked by the child field; the
    errors name the index or the key, as DRF names them."""
    schema = schema_of(serializers.ListField(child=serializers.IntegerField()))
    assert refusal(schema, {"value": [1, "2"]}) == {"value": {1: ["A valid integer is required."]}}
    schema = schema_of(serializers.DictField(child=serializers.BooleanField()))
    assert refusal(schema, {"value": {"a": True, "b": "true"}}) == {
        "value": {"b": ["Must be a valid boolean."]}
    }


class Line(serializers.Serializer):
    sku = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1)


class Order(serializers.Serializer):
    lines = Line(many=True)
    gift = Line(required=False)
    paid = serializers.BooleanField()


def test_nested_serializers_and_lists_of_them_are_strict_at_every_level():
    """A nested serializer and a ``many=True`` one are checked field by field, their
    errors nested as DRF nests them (a list's by the index of the item)."""
    data = {
        "lines": [{"sku": "a", "quantity": 1}, {"sku": 7, "quantity": "2"}],
        "gift": {"sku": "g", "quantity": True},
        "paid": True,
    }
    assert refusal(Order, data) == {
        "lines": {
            1: {"sku": ["Not a valid string."], "quantity": ["A valid integer is required."]},
        },
        "gift": {"quantity": ["A valid integer is required."]},
    }


def test_a_many_schema_checks_each_item():
    """``Line(many=True)`` as a whole schema refuses an item of the wrong types."""
    data = [{"sku": "a", "quantity": 1}, {"sku": "b", "quantity": "1"}]
    assert refusal(Line(many=True), data) == {1: {"quantity": ["A valid integer is required."]}}


def test_type_errors_and_drf_errors_are_told_together():
    """A body with a wrong type in one field and a value too small in another gets both
    messages, each field its own."""
    data = {"lines": [{"sku": 5, "quantity": 0}], "paid": "no"}
    assert refusal(Order, data) == {
        "lines": {
            0: {
                "sku": ["Not a valid string."],
                "quantity": ["Ensure this value is greater than or equal to 1."],
            }
        },
        "paid": ["Must be a valid boolean."],
    }


def test_with_drfs_older_list_errors_a_list_is_told_as_a_list(settings):
    """With ``LIST_SERIALIZER_ERRORS_AS_DICT`` off, a list's errors are a list with {}
    for each item without errors, type errors and DRF's merged item by item."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "LIST_SERIALIZER_ERRORS_AS_DICT": False}
    data = {"lines": [{"sku": "a", "quantity": 0}, {"sku": 7, "quantity": 1}], "paid": True}
    with pytest.warns(RemovedInDRF320Warning):
        assert refusal(Order, data) == {
            "lines": [
                {"quantity": ["Ensure this value is greater than or equal to 1."]},
                {"sku": ["Not a valid string."]},
            ]
        }


def test_the_tutorials_messages_stay_beside_type_errors():
    """The tutorial's register body: a well-typed short name keeps the tutorial's
    message, a numeric password is not a string, a numeric email is an invalid one."""
    from users.serializers import EMAIL_MESSAGE, NAME_MESSAGE, RegisterUserSerializer

    data = {"name": "A", "email": 5, "password": 12345678}
    assert refusal(RegisterUserSerializer, data) == {
        "name": [NAME_MESSAGE],
        "email": [EMAIL_MESSAGE],
        "password": ["Not a valid string."],
    }


def test_query_parameters_are_text_and_keep_drfs_parsing():
    """``strict=False`` (query parameters) reads "2" as 2 and "true" as True."""
    schema = type(
        "Query",
        (serializers.Serializer,),
        {"limit": serializers.IntegerField(), "all": serializers.BooleanField()},
    )
    assert validate(schema, {"limit": "2", "all": "true"}, strict=False) == {
        "limit": 2,
        "all": True,
    }


class Page(serializers.Serializer):
    limit = serializers.IntegerField()


@pytest.mark.django_db
def test_an_api_steps_query_parameters_are_parsed_from_text(steps, settings):
    """``?limit=2`` reaches the handler as 2: query parameters keep DRF's parsing."""
    config = ApiStep(name="Page", method="GET", path="/page", query_params=Page)
    step = steps.add(config, lambda request, ctx: {"status": 200, "body": request.query_params})
    urlconf = types.ModuleType("strict_query_urlconf")
    urlconf.urlpatterns = [path(step.config.route, view_for({"GET": step}))]
    settings.ROOT_URLCONF = urlconf
    response = APIClient().get("/page", {"limit": "2"})
    assert (response.status_code, response.json()) == (200, {"limit": 2})


class Legacy(serializers.Serializer):
    count = serializers.IntegerField()
    active = serializers.BooleanField()

    class Meta:
        coerce_fields = ["count"]


class LegacyAll(Legacy):
    class Meta:
        coerce_fields = "__all__"


def test_coerce_fields_hands_listed_fields_back_to_drf():
    """A field in ``Meta.coerce_fields`` takes what DRF takes; the others stay strict."""
    assert validate(Legacy, {"count": "3", "active": True}) == {"count": 3, "active": True}
    assert refusal(Legacy, {"count": "3", "active": "yes"}) == {
        "active": ["Must be a valid boolean."]
    }
    assert validate(LegacyAll, {"count": "3", "active": "yes"}) == {"count": 3, "active": True}


class Wrapper(serializers.Serializer):
    inner = Legacy()
    items = serializers.ListField(child=serializers.IntegerField())

    class Meta:
        coerce_fields = ["items"]


def test_coerce_fields_of_a_nested_serializer_apply_inside_it():
    """A nested serializer's own ``Meta.coerce_fields`` applies to its fields; a listed
    list field takes its items as DRF does."""
    data = {"inner": {"count": "3", "active": True}, "items": ["1", 2]}
    assert validate(Wrapper, data) == {"inner": {"count": 3, "active": True}, "items": [1, 2]}


@pytest.mark.parametrize(
    "coerce, message",
    [
        ("count", r"Bad\.Meta\.coerce_fields is a list of field names or '__all__', not 'count'"),
        (["cuont"], r"Bad\.Meta\.coerce_fields names 'cuont', not among the fields of Bad"),
    ],
)
def test_coerce_fields_that_cannot_work_are_refused_with_the_fix(coerce, message):
    """``coerce_fields`` that is not a list, or names no field, raises ImproperlyConfigured
    saying what to write."""
    bad = type(
        "Bad",
        (serializers.Serializer,),
        {"count": serializers.IntegerField(), "Meta": type("Meta", (), {"coerce_fields": coerce})},
    )
    with pytest.raises(ImproperlyConfigured, match=message):
        validate(bad, {"count": 1})


class Item(serializers.Serializer):
    id = serializers.UUIDField()
    n = serializers.IntegerField()
    share = serializers.FloatField()
    price = serializers.DecimalField(max_digits=5, decimal_places=2)
    on = serializers.BooleanField()
    kind = serializers.ChoiceField(choices=[1, 2])
    day = serializers.DateField()
    at = serializers.DateTimeField()
    time = serializers.TimeField()
    wait = serializers.DurationField()
    host = serializers.IPAddressField()
    tags = serializers.ListField(child=serializers.CharField())
    counts = serializers.DictField(child=serializers.IntegerField())
    line = Line()


@pytest.mark.django_db
def test_the_openapi_document_says_the_types_validation_takes(steps, settings):
    """The published OpenAPI document gives each field the JSON type it takes: a body
    of those types passes, and a value of any other type is refused."""
    config = ApiStep(name="Items", method="POST", path="/items", body_schema=Item)
    step = steps.add(config, lambda request, ctx: {"status": 201, "body": {}})
    urlconf = types.ModuleType("strict_test_urlconf")
    urlconf.urlpatterns = [
        path("api/", include("workflow.api_urls")),
        path(step.config.route, view_for({"POST": step})),
    ]
    settings.ROOT_URLCONF = urlconf
    document = APIClient().get("/api/schema/", {"format": "json"}).json()
    properties = document["components"]["schemas"]["Item"]["properties"]
    components = document["components"]["schemas"]
    types_of = {name: resolved(p, components)["type"] for name, p in properties.items()}
    assert types_of == {
        "id": "string",
        "n": "integer",
        "share": "number",
        "price": "string",
        "on": "boolean",
        "kind": "integer",
        "day": "string",
        "at": "string",
        "time": "string",
        "wait": "string",
        "host": "string",
        "tags": "array",
        "counts": "object",
        "line": "object",
    }
    good = {
        "id": ID,
        "n": 1,
        "share": 0.5,
        "price": "1.50",
        "on": True,
        "kind": 2,
        "day": "2026-01-01",
        "at": "2026-01-01T09:00:00Z",
        "time": "09:00",
        "wait": "00:01:00",
        "host": "192.0.2.1",
        "tags": ["a"],
        "counts": {"a": 1},
        "line": {"sku": "a", "quantity": 1},
    }
    assert set(validate(Item, good)) == set(properties)
    other = {"string": [1, True], "integer": ["1", 1.5, True], "number": ["1.5", True]}
    other |= {"boolean": ["true", 1], "array": ["a", {}], "object": [[], "a"]}
    for name, json_type in types_of.items():
        for value in other[json_type]:
            assert name in refusal(Item, {**good, name: value}), (name, value)


def resolved(schema, components):
    """``schema``, or the component its ``$ref`` names."""
    ref = schema.get("$ref")
    return components[ref.rsplit("/", 1)[1]] if ref else schema
