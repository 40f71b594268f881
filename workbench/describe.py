"""Plain, JSON-ready descriptions of steps for the workbench: config panels and forms."""

from rest_framework import serializers

from workflow.policy import QueuePolicy
from workflow.schemas import bind

EXAMPLES = [
    (serializers.EmailField, "user@example.com"),
    (serializers.BooleanField, False),
    (serializers.IntegerField, 0),
    (serializers.FloatField, 0.0),
    (serializers.DecimalField, "0"),
    (serializers.DateTimeField, "2026-01-01T00:00:00Z"),
    (serializers.DateField, "2026-01-01"),
    (serializers.UUIDField, "00000000-0000-0000-0000-000000000000"),
    (serializers.ListField, []),
    (serializers.DictField, {}),
    (serializers.JSONField, {}),
]


def schema_fields(schema):
    """``[{name, type, required, readOnly, writeOnly, help}]`` of a serializer, or []."""
    if schema is None:
        return []
    serializer = bind(schema, None)
    serializer = getattr(serializer, "child", serializer)  # Foo(many=True)
    return [
        {
            "name": name,
            "type": type(field).__name__.removesuffix("Field") or type(field).__name__,
            "required": bool(field.required),
            "readOnly": bool(field.read_only),
            "writeOnly": bool(field.write_only),
            "help": str(field.help_text or ""),
        }
        for name, field in serializer.fields.items()
    ]


def example_value(field):
    if isinstance(field, serializers.ChoiceField) and field.choices:
        return next(iter(field.choices))
    for field_type, value in EXAMPLES:
        if isinstance(field, field_type):
            return value
    if isinstance(field, serializers.BaseSerializer):
        return example_body(field)
    return "string"


def example_body(schema):
    """A request body that fills every writable field with a value of its type."""
    if schema is None:
        return {}
    serializer = bind(schema, None) if not isinstance(schema, serializers.Field) else schema
    many = isinstance(serializer, serializers.ListSerializer)
    serializer = getattr(serializer, "child", serializer)
    body = {
        name: example_value(field)
        for name, field in serializer.fields.items()
        if not field.read_only
    }
    return [body] if many else body


def topics(emits):
    return [e.topic for e in emits]


def step_detail(step):
    """The config panel of a step on the Flows page."""
    config = step.config
    detail = {
        "name": step.name,
        "type": step.type,
        "description": config.description,
        "file": step.file,
        "flows": config.flows,
        "emits": topics(config.emits),
        "virtualEmits": topics(config.virtual_emits),
        "subscribes": list(config.subscribe_topics),
        "virtualSubscribes": config.virtual_subscribes,
    }
    if step.type == "api":
        detail.update(method=config.method, path=config.path)
        detail["schema"] = schema_fields(config.body_schema)
    elif step.type == "event":
        detail["schema"] = schema_fields(config.input)
    elif step.type == "cron":
        detail["cron"] = config.cron
    if step.type in ("event", "cron"):
        policy = QueuePolicy.for_step(step)
        detail["queue"] = {
            "type": policy.type,
            "maxRetries": policy.max_retries,
            "visibilityTimeout": policy.visibility_timeout,
            "backoff": policy.backoff,
        }
    return detail
