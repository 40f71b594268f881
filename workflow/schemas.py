"""Step schemas are DRF serializers, given as a class or an instance (``Foo(many=True)``).

They are strict about JSON types (see ``strict``): ``validate`` refuses a number where
the schema says string, unless told ``strict=False`` (query parameters, text by nature).
"""

from rest_framework.exceptions import ValidationError
from rest_framework.serializers import ListSerializer

from .strict import type_errors


def bind(schema, data):
    """A fresh serializer of ``schema``, declared as it was, bound to ``data``."""
    if isinstance(schema, type):
        return schema(data=data)
    if isinstance(schema, ListSerializer):
        # Foo(many=True) is a ListSerializer around a child already bound to it: declare it again.
        child = schema.child
        list_kwargs = {k: v for k, v in schema._kwargs.items() if k != "child"}
        return child.__class__(
            *child._args, **{**child._kwargs, **list_kwargs, "many": True, "data": data}
        )
    return schema.__class__(*schema._args, **{**schema._kwargs, "data": data})


def validate(schema, data, *, strict=True):
    """``data`` validated by ``schema``; raises DRF's ValidationError naming each field.

    ``strict``: a value of another JSON type than its field's is refused, with the
    field's own message in place of what DRF said of it after coercing.
    """
    serializer = bind(schema, data)
    valid = serializer.is_valid()
    wrong = type_errors(serializer, data) if strict else None
    if wrong:
        raise ValidationError(merged({} if valid else serializer.errors, wrong))
    if not valid:
        raise ValidationError(serializer.errors)
    validated = serializer.validated_data
    return dict(validated) if isinstance(validated, dict) else validated


def merged(errors, wrong):
    """DRF's ``errors`` with the type errors ``wrong`` put in, field by field."""
    if isinstance(errors, dict) and isinstance(wrong, dict):
        return {**errors, **{key: merged(errors.get(key), found) for key, found in wrong.items()}}
    if isinstance(errors, list) and isinstance(wrong, list) and len(errors) == len(wrong):
        pairs = zip(errors, wrong, strict=True)
        return [merged(error, found) if found else error for error, found in pairs]
    return wrong


def schema_name(schema):
    """``NewUserSerializer``, ``ItemSerializer(many=True)``: a schema as declared."""
    if isinstance(schema, ListSerializer):
        return f"{type(schema.child).__name__}(many=True)"
    return schema.__name__ if isinstance(schema, type) else type(schema).__name__
