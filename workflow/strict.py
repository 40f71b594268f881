"""Strict JSON types for step schemas: a JSON number is not a string.

DRF's fields coerce what they are given: ``CharField`` takes ``12345`` as ``"12345"``,
``IntegerField`` takes ``"3"`` as 3, ``BooleanField`` takes ``"yes"`` as True. A step's
``body_schema``, ``input`` and ``response_schema`` describe JSON, and the OpenAPI and
AsyncAPI documents publish each field's JSON type, so ``type_errors`` walks a bound
serializer's fields against the raw data and refuses a value of another JSON type,
in DRF's error shape and in the field's own words ("Not a valid string."):

=====================================================  =================================
field                                                  JSON value it takes
=====================================================  =================================
``CharField`` and its kin (Email, Slug, Regex, URL,    a string
IP address), ``UUIDField``, ``DurationField``
``DateField``, ``DateTimeField``, ``TimeField``        a string (DRF refuses others)
``IntegerField``                                       an integer (not ``1.0``, not
                                                       ``true``)
``FloatField``                                         a number (not ``true``)
``DecimalField``                                       a string such as ``"12.50"``, as
                                                       DRF writes and documents it; a
                                                       number with ``coerce_to_string=
                                                       False``
``BooleanField``                                       ``true`` or ``false``
``ChoiceField``                                        one of the choices, of its type
``MultipleChoiceField``                                a list of them
``ListField``, ``DictField``                           a list, an object; each item by
                                                       its ``child``
a nested serializer, ``many=True``                     an object, a list of objects;
                                                       each field by these rules
``JSONField``, other fields                            what the field itself takes
=====================================================  =================================

``null`` is left to DRF (``allow_null``). Query parameters are text by nature and keep
DRF's parsing (``schemas.validate(..., strict=False)``).

A serializer hands fields back to DRF's coercion with ``Meta.coerce_fields``: a list of
its field names, or ``"__all__"``; a listed field, and everything inside it, is
validated by DRF alone.
"""

from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import empty
from rest_framework.settings import api_settings

ALL = "__all__"
# The format DRF's DurationField names in its "invalid" message.
DURATION = "[DD] [HH:[MM:]]ss[.uuuuuu]"
DECIMAL_STRING = "A valid number is required, written as a string (e.g. '12.50')."

KINDS = [  # the first class a field is an instance of decides
    (serializers.BooleanField, {"boolean"}),
    (serializers.IntegerField, {"integer"}),
    (serializers.FloatField, {"integer", "number"}),
    (serializers.CharField, {"string"}),
    (serializers.UUIDField, {"string"}),
    (serializers.DurationField, {"string"}),
]


def json_kind(value):
    """The JSON type of a parsed JSON value: "boolean", "integer", "number", "string"..."""
    for python_type, kind in (
        (bool, "boolean"),  # before int: True is an int in Python
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ):
        if isinstance(value, python_type):
            return kind
    return type(value).__name__


def decimal_as_string(field):
    """Whether a DecimalField is written (and so taken) as a JSON string."""
    return getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)


def type_errors(field, value):
    """DRF-shaped errors for the JSON types in ``value`` against ``field`` (a bound
    serializer or one of its fields), or None when every type is the field's."""
    if value is None or value is empty:
        return None  # DRF says whether the field is required, or may be null
    if isinstance(field, serializers.ListSerializer):
        return _list_errors(field, value)
    if isinstance(field, serializers.Serializer):
        return _object_errors(field, value)
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return _child_errors(field.child, enumerate(value))
    if isinstance(field, serializers.DictField) and isinstance(value, dict):
        return _child_errors(field.child, value.items())
    if isinstance(field, serializers.MultipleChoiceField):
        return _choices_errors(field, value)
    if isinstance(field, serializers.ChoiceField):
        return _choice_errors(field, value)
    if isinstance(field, serializers.DecimalField):
        return _decimal_errors(field, value)
    for field_type, kinds in KINDS:
        if isinstance(field, field_type):
            # (DurationField's message names the format it takes.)
            return None if json_kind(value) in kinds else _fail(field, "invalid", format=DURATION)
    return None


def _object_errors(serializer, value):
    if not isinstance(value, dict):
        return None  # DRF: "Invalid data. Expected a dictionary, ..."
    coerced = coerce_fields(serializer)
    errors = {}
    for name, field in serializer.fields.items():
        if field.read_only or name in coerced or isinstance(field, serializers.HiddenField):
            continue
        found = type_errors(field, value.get(name, empty))
        if found:
            errors[name] = found
    return errors or None


def _list_errors(serializer, value):
    if not isinstance(value, list):
        return None  # DRF: "Expected a list of items ..."
    errors = _child_errors(serializer.child, enumerate(value))
    if errors is None or api_settings.LIST_SERIALIZER_ERRORS_AS_DICT:
        return errors  # {index: errors}, as DRF gives them
    return [errors.get(index, {}) for index in range(len(value))]  # DRF's older shape


def _child_errors(child, items):
    errors = {key: found for key, item in items if (found := type_errors(child, item))}
    return errors or None


def _choice_errors(field, value):
    if value == "" and field.allow_blank:
        return None
    kind = json_kind(value)
    if any(json_kind(key) == kind and key == value for key in field.choices):
        return None
    return _fail(field, "invalid_choice", input=value)


def _choices_errors(field, value):
    if not isinstance(value, list):
        return _fail(field, "not_a_list", input_type=type(value).__name__)
    for item in value:
        if found := _choice_errors(field, item):
            return found  # DRF names the first choice it refuses
    return None


def _decimal_errors(field, value):
    if decimal_as_string(field):
        return None if isinstance(value, str) else [DECIMAL_STRING]
    return None if json_kind(value) in ("integer", "number") else _fail(field, "invalid")


def _fail(field, key, **kwargs):
    """The field's own message ``key`` (DRF's, or the one its declaration gives)."""
    try:
        field.fail(key, **kwargs)
    except ValidationError as exc:
        return exc.detail


def coerce_fields(serializer):
    """The names of the fields ``serializer`` hands back to DRF's coercion
    (``Meta.coerce_fields``); raises ImproperlyConfigured, saying how to write it, if
    that cannot work."""
    names = getattr(getattr(serializer, "Meta", None), "coerce_fields", ())
    fields = serializer.fields
    if names == ALL:
        return set(fields)
    owner = f"{type(serializer).__name__}.Meta.coerce_fields"
    if isinstance(names, str) or not isinstance(names, list | tuple | set | frozenset):
        raise ImproperlyConfigured(
            f"{owner} is a list of field names or '__all__', not {names!r}; "
            f"e.g. coerce_fields = [{next(iter(fields), 'name')!r}]"
        )
    unknown = sorted(set(names) - set(fields))
    if unknown:
        raise ImproperlyConfigured(
            f"{owner} names {', '.join(map(repr, unknown))}, not among the fields of "
            f"{type(serializer).__name__} ({', '.join(fields) or 'none'}); "
            "list its field names, or '__all__'"
        )
    return set(names)


def check_coerce_fields(field):
    """Raise ImproperlyConfigured if a serializer in ``field`` (a bound serializer or
    field, nested ones included) declares a ``Meta.coerce_fields`` that cannot work."""
    if isinstance(field, serializers.ListSerializer):
        check_coerce_fields(field.child)
    elif isinstance(field, serializers.Serializer):
        coerce_fields(field)
        for child in field.fields.values():
            check_coerce_fields(child)
    elif isinstance(field, serializers.ListField | serializers.DictField):
        check_coerce_fields(field.child)
