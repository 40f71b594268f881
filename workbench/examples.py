"""Example values of a serializer's fields: the JSON body the Endpoints form starts
with, one that passes the step's body schema.

A field's example is the first of its candidates the field itself accepts
(``field.run_validation``): its declared ``initial`` (DRF's value for a form to start
with) or ``default``, then values made from its kind and its limits: length, range,
choices, pattern, list size. If none passes, the first made one is shown. Nested
serializers, and lists of them, are filled field by field. Read-only and hidden fields
are left out: a client does not send them.
"""

import datetime
import decimal
import json
import math

from django.core import validators as django_validators
from django.utils.duration import duration_string
from rest_framework import ISO_8601, serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from workflow.schemas import bind
from workflow.strict import decimal_as_string

from . import patterns


def example_body(schema):
    """A request body that fills every writable field of ``schema`` (a serializer class
    or instance; ``many=True`` gives a list) with a value the field accepts."""
    if schema is None:
        return {}
    serializer = bind(schema, None) if not isinstance(schema, serializers.Field) else schema
    if isinstance(serializer, serializers.ListSerializer):
        return sized(example_body(serializer.child), serializer)
    return {
        name: example_value(field)
        for name, field in serializer.fields.items()
        if not field.read_only and not isinstance(field, serializers.HiddenField)
    }


def example_value(field):
    """The first candidate ``field`` accepts, or its first made one."""
    if isinstance(field, serializers.BaseSerializer):
        return example_body(field)
    made = list(kind_examples(field))
    for value in [*declared(field), *made]:
        if accepts(field, value):
            return value
    return made[0]


def accepts(field, value):
    try:
        field.run_validation(value)
    except (serializers.ValidationError, serializers.SkipField):
        return False
    return True


def declared(field):
    """The field's own ``initial`` and ``default``, where given and JSON."""
    values = []
    if "initial" in field._kwargs:
        values.append(field.get_initial())
    default = field.default
    if default is not empty and not getattr(default, "requires_context", False):
        values.append(default() if callable(default) else default)
    return [value for value in values if is_json(value)]


def is_json(value):
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def kind_examples(field):
    """Values made from the field's kind and limits, the plainest first."""
    for field_type, make in KINDS:
        if isinstance(field, field_type):
            yield from make(field)
            break
    yield "string"
    if field.allow_null:
        yield None


def limits(field, kind):
    """The (low, high) bounds the field's validators set: ``"length"`` or ``"value"``."""
    low_type, high_type = {
        "length": (django_validators.MinLengthValidator, django_validators.MaxLengthValidator),
        "value": (django_validators.MinValueValidator, django_validators.MaxValueValidator),
    }[kind]
    low = high = None
    for validator in field.validators:
        limit = getattr(validator, "limit_value", None)
        limit = limit() if callable(limit) else limit
        if isinstance(validator, low_type):
            low = limit if low is None else max(low, limit)
        elif isinstance(validator, high_type):
            high = limit if high is None else min(high, limit)
    return low, high


def clamp(value, field):
    low, high = limits(field, "value")
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return value


def sized(item, field):
    """``item`` as many times as the list ``field`` (a ``ListField`` or a ``many=True``
    serializer) needs: its ``min_length``, and at least once unless it allows none."""
    count = max(getattr(field, "min_length", None) or 0, 1)
    high = getattr(field, "max_length", None)
    return [item] * (count if high is None else min(count, high))


def padded(text, field, filler="0123456789"):
    """``text`` cut or lengthened (with ``filler``) to fit the field's length limits."""
    low, high = limits(field, "length")
    if low and len(text) < low:
        text += (filler * math.ceil(low / len(filler)))[: low - len(text)]
    return text if high is None else text[:high]


def text(field):
    yield padded("string", field)
    for validator in field.validators:
        if isinstance(validator, django_validators.RegexValidator) and not (
            validator.inverse_match
        ):
            yield from patterns.matches(validator.regex)


def email(field):
    low, _ = limits(field, "length")
    local = "user" + "x" * max(0, (low or 0) - len("user@example.com"))
    yield f"{local}@example.com"
    yield "a@b.co"


def url(field):
    yield padded("https://example.com/", field, filler="path/")


def ip_address(field):
    yield "2001:db8::1" if field.protocol == "ipv6" else "192.0.2.1"
    yield "2001:db8::1"


def choice(field):
    keys = [key for key in field.choices if key != ""] or list(field.choices)
    yield from keys[:1]


def multiple_choice(field):
    yield [next(choice(field))] if field.choices else []


def number(field):
    zero = clamp(0, field)
    if isinstance(field, serializers.IntegerField):
        yield int(math.ceil(zero))
    elif isinstance(field, serializers.FloatField) or not decimal_as_string(field):
        yield float(zero)
    else:
        yield str(decimal.Decimal(zero))  # a DecimalField is written as a string


def duration(field):
    yield duration_string(clamp(datetime.timedelta(0), field))


def moment(value, setting):
    """A maker of ``value`` written in the field's first input format (ISO 8601 if it
    takes it); ``setting`` names DRF's default formats (``DATE_INPUT_FORMATS`` ...)."""

    def make(field):
        formats = getattr(field, "input_formats", getattr(api_settings, setting))
        if ISO_8601 in formats:
            yield value.isoformat().replace("+00:00", "Z")
        else:
            yield value.strftime(formats[0])

    return make


def many(field):
    yield sized(example_value(field.child), field)
    yield []


def mapping(field):
    yield {"key": example_value(field.child)}
    yield {}


KINDS = [  # the first type a field is an instance of decides; subclasses first
    (serializers.EmailField, email),
    (serializers.URLField, url),
    (serializers.IPAddressField, ip_address),
    (serializers.CharField, text),
    (serializers.MultipleChoiceField, multiple_choice),
    (serializers.ChoiceField, choice),
    (serializers.BooleanField, lambda field: [False, True]),
    (serializers.IntegerField, number),
    (serializers.FloatField, number),
    (serializers.DecimalField, number),
    (serializers.DurationField, duration),
    (
        serializers.DateTimeField,
        moment(datetime.datetime(2026, 1, 1, 9, tzinfo=datetime.UTC), "DATETIME_INPUT_FORMATS"),
    ),
    (serializers.DateField, moment(datetime.date(2026, 1, 1), "DATE_INPUT_FORMATS")),
    (serializers.TimeField, moment(datetime.time(9, 0), "TIME_INPUT_FORMATS")),
    (serializers.UUIDField, lambda field: ["00000000-0000-0000-0000-000000000000"]),
    (serializers.ListField, many),
    (serializers.DictField, mapping),
    (serializers.JSONField, lambda field: [{}]),
]
