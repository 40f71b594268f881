"""Plain, JSON-ready descriptions of steps for the workbench: config panels and the
fields of forms (their example bodies are made by ``workbench.examples``)."""

from workflow.policy import QueuePolicy
from workflow.schemas import bind


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
    if getattr(config, "join", None):
        detail["join"] = (
            f"{' + '.join(config.subscribes)} by {config.join['key']}, within "
            f"{config.join['timeout']:g} s, else {config.join['on_timeout']}"
        )
    if flow := getattr(config, "flow_control", None):
        detail["flowControl"] = ", ".join(flow.describe())
    if step.type in ("event", "cron"):
        policy = QueuePolicy.for_step(step)
        detail["queue"] = {
            "type": policy.type,
            "maxRetries": policy.max_retries,
            "visibilityTimeout": policy.visibility_timeout,
            "backoff": policy.backoff,
        }
    return detail
