"""What a new event step takes as input (for ``manage.py startstep``): the serializer its
topic's subscribers already declare, with a sample event that passes it; or, when none
is declared, the topic's data as it is.

    found = topic_input(registry, ["user.registered"])
    found.serializer   # NewUserSerializer (SendWelcomeEmail's input), imported from
                       # found.serializer.__module__ by the stub
    found.sample       # {"userId": "userId-1", "name": "name-1", "email": "user@example.com"}
    found.received     # the sample's fields the stub's handler keeps and emits

So a stub works against the real topic: what its emitters send passes its input as it
passes the other subscribers', and no field is invented. A sample is made from the
serializer's own fields; if one does not pass it (a field of a kind not known here, a
``validate`` of its own), the stub takes the data as it is, and ``note`` says why.
"""

from dataclasses import dataclass, field

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from .schemas import validate
from .strict import decimal_as_string
from .topics import is_pattern

PLAIN = (str, int, float, bool)  # validated values the handler may emit as they are
SAMPLES = [  # the first matching class gives the sample value (subclasses before bases)
    (serializers.BooleanField, lambda name, f: True),
    (serializers.EmailField, lambda name, f: "user@example.com"),
    (serializers.URLField, lambda name, f: "https://example.com/"),
    (serializers.UUIDField, lambda name, f: "00000000-0000-4000-8000-000000000001"),
    (serializers.IPAddressField, lambda name, f: "192.0.2.1"),
    (serializers.MultipleChoiceField, lambda name, f: [_first_choice(f)]),
    (serializers.ChoiceField, lambda name, f: _first_choice(f)),
    (serializers.DateTimeField, lambda name, f: "2026-01-01T00:00:00Z"),
    (serializers.DateField, lambda name, f: "2026-01-01"),
    (serializers.TimeField, lambda name, f: "12:00:00"),
    (serializers.DurationField, lambda name, f: "00:01:00"),
    (serializers.DecimalField, lambda name, f: "1" if decimal_as_string(f) else 1),
    (serializers.IntegerField, lambda name, f: _number(f, 1)),
    (serializers.FloatField, lambda name, f: _number(f, 1.0)),
    (serializers.CharField, lambda name, f: _text(name, f)),
    (serializers.ListField, lambda name, f: [] if f.allow_empty else [_value(name, f.child)]),
    (serializers.DictField, lambda name, f: {}),
    (serializers.JSONField, lambda name, f: {}),
]


@dataclass(frozen=True)
class TopicInput:
    """The input of a new subscriber: ``serializer`` None means the data as it is."""

    serializer: type | None = None
    declared_by: str = ""  # the subscriber whose input it is
    sample: dict = field(default_factory=dict)
    received: dict = field(default_factory=dict)
    note: str = ""

    @property
    def required(self):
        """A field an empty event lacks (None if every field is optional)."""
        return next(iter(self.sample), None)


def topic_input(reg, topics):
    """The input for a step subscribing to ``topics``: the one serializer their first
    subscribers declare (one that can be imported), else the data as it is."""
    declared = {topic: _declared(reg, topic) for topic in topics if not is_pattern(topic)}
    found = {step.config.input for step in declared.values() if step is not None}
    if len(found) != 1 or None in declared.values():
        note = ""
        if found:  # some topics' subscribers declare an input, not one for all topics
            shown = ", ".join(sorted(declared))
            note = f"no one input is declared for all of {shown}; the stub takes the data as it is"
        return TopicInput(note=note)
    step = next(s for s in declared.values())
    return _sampled(step.config.input, step.name)


def _declared(reg, topic):
    """The first step subscribing to ``topic`` whose input is an importable class."""
    for step in reg.subscribers(topic):
        schema = getattr(step.config, "input", None)
        if topic in step.config.subscribe_topics and _importable(schema):
            return step
    return None


def _importable(schema):
    return isinstance(schema, type) and schema.__qualname__ == schema.__name__


def _sampled(serializer, declared_by):
    try:
        sample = _fields(serializer())
        validated = validate(serializer, sample)
    except (ValidationError, LookupError, TypeError) as exc:
        detail = exc.detail if isinstance(exc, ValidationError) else exc
        note = f"no sample event passes {serializer.__name__} ({detail})"
        return TopicInput(note=note + "; the stub takes the data as it is")
    received = {
        name: value
        for name, value in sample.items()
        if type(validated.get(name)) in PLAIN and validated[name] == value
    }
    return TopicInput(serializer, declared_by, sample, received)


def _fields(serializer):
    """A sample of ``serializer``'s required writable fields."""
    return {
        name: _value(name, f)
        for name, f in serializer.fields.items()
        if f.required and not f.read_only
    }


def _value(name, f):
    if isinstance(f, serializers.ListSerializer):
        return [_fields(f.child)]
    if isinstance(f, serializers.Serializer):
        return _fields(f)
    for kind, make in SAMPLES:
        if isinstance(f, kind):
            return make(name, f)
    raise LookupError(f"no sample for {name}, a {type(f).__name__}")


def _number(f, value):
    """``value``, moved within the field's bounds."""
    value = max(value, f.min_value) if f.min_value is not None else value
    return min(value, f.max_value) if f.max_value is not None else value


def _first_choice(f):
    return next(iter(f.choice_strings_to_values.values()), None)


def _text(name, f):
    """``name-1``, as long as the field allows."""
    text = f"{name}-1".ljust(f.min_length or 0, "x")
    return text[: f.max_length] if f.max_length else text
