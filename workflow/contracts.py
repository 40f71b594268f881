"""An emit's contract: the data emitted on a topic is data its subscribers take.

``check_emit`` validates the data, as the emit happens, with the ``schema`` the emitter
declares for the topic (``emits=[{"topic": ..., "schema": Serializer}]``, optional) and
with the ``input`` serializer of every subscriber of the topic, by ``schemas.validate``:
the very check each delivery applies before its handler runs. Data one of them refuses
raises ``InvalidEmit`` at once, naming the emitter, the topic, the subscribers and the
field messages, and nothing is emitted: a bad emit fails where it is written, not as one
dead letter per subscriber later. Subscribers that share one serializer class are
checked once.

A subscriber's validation that reads the database reads it as it is at the emit.

``unmet_inputs`` is for ``manage.py check`` (``workflow.W005``): an emit whose declared
schema lets through data a subscriber's ``input`` refuses (a field the input requires
that the schema lacks or leaves optional, another JSON type, a null), compared field by
field from the declarations, without data.
"""

import json
from collections.abc import Iterator
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.serializers import ListSerializer

from .errors import InvalidEmit
from .registry import RegisteredStep, registry
from .schemas import schema_name, validate
from .steps import Schema

__all__ = ["InvalidEmit", "check_emit", "declared_schema", "unmet", "unmet_inputs"]


def check_emit(topic: str, data: Any, emitter: RegisteredStep | None = None) -> None:
    """Raise ``InvalidEmit`` unless ``data`` passes ``emitter``'s declared schema for
    ``topic`` (if any) and the ``input`` of each of ``topic``'s subscribers."""
    refusals = []
    for whose, schema in schemas_for(topic, emitter):
        try:
            validate(schema, data)
        except ValidationError as exc:
            refusals.append(f"{whose} ({schema_name(schema)}) says {json.dumps(exc.detail)}")
    if refusals:
        emit = (
            f"{emitter.name}'s emit of {topic!r}"
            if emitter is not None
            else f"The emit of {topic!r} (from outside any step)"
        )
        raise InvalidEmit(
            f"{emit} was refused: {'; '.join(refusals)}. Emit what "
            f"{'these serializers declare' if len(refusals) > 1 else 'it declares'} "
            "(or change the serializer); nothing was emitted"
        )


def schemas_for(topic: str, emitter: RegisteredStep | None) -> Iterator[tuple[str, Schema]]:
    """``(whose, schema)``: the emitter's declared schema for ``topic``, then each
    distinct subscriber ``input`` with the subscribers that declare it."""
    if emitter is not None and (declared := declared_schema(emitter, topic)) is not None:
        yield f"{emitter.name}'s schema for {topic!r}", declared
    takers: dict[Any, tuple[Schema, list[str]]] = {}
    for step in registry.subscribers(topic):
        schema = getattr(step.config, "input", None)
        if getattr(step.config, "join", None):
            continue  # a join's input takes all its topics' data together, not one event
        if schema is not None:
            key = schema if isinstance(schema, type) else id(schema)
            takers.setdefault(key, (schema, []))[1].append(step.name)
    for schema, names in takers.values():
        yield f"the input of {', '.join(names)}", schema


def declared_schema(emitter: RegisteredStep, topic: str) -> Schema | None:
    """The ``schema`` ``emitter`` declares on its emit of ``topic``, or None."""
    for emit in emitter.config.emits:
        if emit.topic == topic and emit.schema is not None:
            return emit.schema
    return None


# manage.py check: a declared emit schema against its subscribers' input (workflow.W005).

JSON_TYPES = (  # most specific first; a field of none of these is not compared
    (serializers.BooleanField, "boolean"),
    (serializers.IntegerField, "integer"),
    (serializers.FloatField, "number"),
    (serializers.ChoiceField, None),  # its choices may be strings or numbers
    (serializers.JSONField, None),
    (serializers.CharField, "string"),
    (serializers.UUIDField, "string"),
    (serializers.DateTimeField, "string"),
    (serializers.DateField, "string"),
    (serializers.TimeField, "string"),
    (serializers.DurationField, "string"),
    (serializers.ListField, "array"),
    (serializers.ListSerializer, "array"),
    (serializers.DictField, "object"),
    (serializers.Serializer, "object"),
)


def json_type(field: serializers.Field) -> str | None:
    """The JSON type a field takes (``"string"``, ``"integer"``, ...), or None if unsure."""
    for kind, name in JSON_TYPES:
        if isinstance(field, kind):
            return name
    return None


def unmet(given: Schema, wanted: Schema, path: str = "") -> list[str]:
    """Why data that ``given`` declares can fail ``wanted``: each field ``wanted``
    requires that ``given`` lacks or leaves optional, and each field both declare with
    different JSON types (nested serializers compared field by field)."""
    given_fields, wanted_fields = fields_of(given), fields_of(wanted)
    if given_fields is None or wanted_fields is None:
        return []
    problems = []
    for name, field in wanted_fields.items():
        other = given_fields.get(name)
        if other is None:
            if field.required:
                problems.append(f"{path}{name} is required but not declared")
            continue
        if field.required and not other.required:
            problems.append(f"{path}{name} is required but declared optional")
        problems += mismatch(other, field, f"{path}{name}")
    return problems


def mismatch(given: serializers.Field, wanted: serializers.Field, where: str) -> list[str]:
    """A field both declare: a JSON type ``wanted`` refuses, or the nested fields' faults."""
    if isinstance(given, serializers.Serializer) and isinstance(wanted, serializers.Serializer):
        return unmet(given, wanted, f"{where}.")
    have, need = json_type(given), json_type(wanted)
    if have and need and have != need and (have, need) != ("integer", "number"):
        return [f"{where} takes {need}, declared {have}"]
    if given.allow_null and not wanted.allow_null:
        return [f"{where} may not be null, declared nullable"]
    return []


def fields_of(schema: Schema | serializers.Field) -> dict[str, serializers.Field] | None:
    """The writable fields of a (non-list) serializer class or instance, else None."""
    if isinstance(schema, ListSerializer) or not (
        isinstance(schema, serializers.Serializer)
        or (isinstance(schema, type) and issubclass(schema, serializers.Serializer))
    ):
        return None
    instance = schema() if isinstance(schema, type) else schema
    return {name: f for name, f in instance.fields.items() if not f.read_only}


def unmet_inputs(reg: Any) -> list[tuple[RegisteredStep, Any, RegisteredStep, list[str]]]:
    """``(emitter, emit, subscriber, problems)`` for each emit whose declared ``schema``
    cannot satisfy a subscriber's ``input`` (``unmet``)."""
    found = []
    for emitter in reg:
        for emit in emitter.config.emits:
            if emit.schema is None:
                continue
            for subscriber in reg.subscribers(emit.topic):
                wanted = getattr(subscriber.config, "input", None)
                if getattr(subscriber.config, "join", None):
                    wanted = None  # a join's input takes its topics' data together
                problems = [] if wanted is None else unmet(emit.schema, wanted)
                if problems:
                    found.append((emitter, emit, subscriber, problems))
    return found
