"""Step schemas are DRF serializers, given as a class or an instance (``Foo(many=True)``)."""

from rest_framework.serializers import ListSerializer


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


def validate(schema, data):
    """``data`` validated by ``schema``; raises DRF's ValidationError naming each field."""
    serializer = bind(schema, data)
    serializer.is_valid(raise_exception=True)
    validated = serializer.validated_data
    return dict(validated) if isinstance(validated, dict) else validated
