"""Step configuration types (Motia's ``api``, ``event``, ``cron`` and ``noop``).

A step module declares ``config = EventStep(...)`` (or ``ApiStep``, ``CronStep``,
``NoopStep``) and, for every type but noop, a plain ``handler`` function. The field
names are Motia's, in Python spelling. A config that cannot work fails at
construction with a ``StepConfigError`` saying what to write instead.
"""

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from croniter import croniter
from django.utils.module_loading import import_string
from rest_framework import serializers

from .middleware import classes_problem, middleware_problem

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
QUEUE_KEYS = {
    "type",
    "max_retries",
    "visibility_timeout",
    "delay_seconds",
    "message_group_id",
    "backoff",
    "non_retryable",
}
HANDLER_KEYS = {"timeout"}
POLICY_EXAMPLES = {
    "permission_classes": "IsAuthenticated",
    "authentication_classes": "SessionAuthentication",
    "throttle_classes": "AnonRateThrottle",
}
PATH_SEGMENT = re.compile(r"^(:[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9._~\-]*)$")


class StepConfigError(ValueError):
    """A step's config is invalid; the message says how to fix it."""


@dataclass(frozen=True)
class Emit:
    """One declared emit: a topic, with an optional edge label for the graph."""

    topic: str
    label: str = ""
    conditional: bool = False


def _emits(value, field_name):
    if isinstance(value, str | dict):
        raise StepConfigError(f"{field_name} must be a list, e.g. {field_name}=[{value!r}]")
    result = []
    for item in value or ():
        if isinstance(item, str) and item:
            result.append(Emit(item))
        elif isinstance(item, dict) and isinstance(item.get("topic"), str):
            unknown = set(item) - {"topic", "label", "conditional"}
            if unknown:
                raise StepConfigError(
                    f"{field_name} entry {item!r} has unknown keys {sorted(unknown)}; "
                    "use 'topic', 'label' and 'conditional'"
                )
            result.append(Emit(item["topic"], item.get("label", ""), bool(item.get("conditional"))))
        else:
            raise StepConfigError(
                f"{field_name} entries are topic strings or "
                f"{{'topic': ..., 'label': ...}} dicts, not {item!r}"
            )
    return tuple(result)


def _topics(value, field_name):
    if isinstance(value, str):
        raise StepConfigError(f"{field_name} must be a list, e.g. {field_name}=[{value!r}]")
    topics = tuple(value or ())
    for topic in topics:
        if not isinstance(topic, str) or not topic:
            raise StepConfigError(f"{field_name} entries are topic names, not {topic!r}")
    return topics


def _serializer(value, field_name):
    if value is None:
        return None
    if isinstance(value, type) and issubclass(value, serializers.BaseSerializer):
        return value
    if isinstance(value, serializers.BaseSerializer):
        return value
    raise StepConfigError(
        f"{field_name} must be a DRF Serializer class, not {value!r}; "
        "declare `class MySerializer(serializers.Serializer): ...` and pass it"
    )


def _queue_policy(infrastructure):
    if not isinstance(infrastructure, dict):
        raise StepConfigError("infrastructure must be a dict, e.g. {'queue': {...}}")
    unknown = set(infrastructure) - {"queue", "handler"}
    if unknown:
        raise StepConfigError(
            f"infrastructure has unknown keys {sorted(unknown)}; use 'queue' and 'handler'"
        )
    _check_handler(infrastructure.get("handler", {}))
    queue = infrastructure.get("queue", {})
    if not isinstance(queue, dict):
        raise StepConfigError("infrastructure['queue'] must be a dict")
    unknown = set(queue) - QUEUE_KEYS
    if unknown:
        raise StepConfigError(
            f"infrastructure['queue'] has unknown keys {sorted(unknown)}; "
            f"allowed: {sorted(QUEUE_KEYS)} (snake_case, e.g. max_retries)"
        )
    for key in ("max_retries", "delay_seconds"):
        if key in queue and (not _number(queue[key]) or queue[key] < 0):
            raise StepConfigError(f"infrastructure['queue']['{key}'] must be a number >= 0")
    if "visibility_timeout" in queue and (
        not _number(queue["visibility_timeout"]) or queue["visibility_timeout"] < 1
    ):
        raise StepConfigError(
            "infrastructure['queue']['visibility_timeout'] must be a number of seconds >= 1: "
            "how long a running delivery stays hidden from other workers without news from "
            "its worker (which renews it while the handler runs)"
        )
    _check_non_retryable(queue.get("non_retryable", []))
    if queue.get("type", "standard") not in ("standard", "fifo"):
        raise StepConfigError("infrastructure['queue']['type'] is 'standard' or 'fifo'")
    if not isinstance(queue.get("message_group_id", ""), str):
        raise StepConfigError("infrastructure['queue']['message_group_id'] names a data field")
    _check_backoff(queue.get("backoff", {}))
    return queue


BACKOFF_KEYS = {"initial", "factor", "max", "jitter"}


def _number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_handler(handler):
    if not isinstance(handler, dict) or set(handler) - HANDLER_KEYS:
        raise StepConfigError(
            "infrastructure['handler'] is a dict with keys from "
            f"{sorted(HANDLER_KEYS)}, e.g. {{'timeout': 30}} (seconds)"
        )
    if "timeout" in handler and (not _number(handler["timeout"]) or handler["timeout"] <= 0):
        raise StepConfigError(
            "infrastructure['handler']['timeout'] must be a number of seconds > 0, e.g. 30"
        )


def _check_non_retryable(entries):
    """Exception classes, or dotted paths to them: errors that make a delivery dead at once."""
    example = "e.g. [PermissionError, 'myapp.errors.CardDeclined']"
    if isinstance(entries, str) or not isinstance(entries, list | tuple):
        raise StepConfigError(
            f"infrastructure['queue']['non_retryable'] must be a list of exceptions, {example}"
        )
    for entry in entries:
        if isinstance(entry, str):
            try:
                entry = import_string(entry)
            except ImportError as exc:
                raise StepConfigError(
                    f"infrastructure['queue']['non_retryable'] entry {entry!r} cannot be "
                    f"imported ({exc}); give the exception class or its dotted path"
                ) from None
        if not (isinstance(entry, type) and issubclass(entry, BaseException)):
            raise StepConfigError(
                f"infrastructure['queue']['non_retryable'] entries are exception classes, "
                f"not {entry!r}; {example}"
            )


def _check_backoff(backoff):
    if not isinstance(backoff, dict) or set(backoff) - BACKOFF_KEYS:
        raise StepConfigError(
            "infrastructure['queue']['backoff'] is a dict with keys from "
            f"{sorted(BACKOFF_KEYS)}, e.g. {{'initial': 1, 'factor': 2, 'max': 300}}"
        )
    for key in ("initial", "factor", "max"):
        if key in backoff and (not isinstance(backoff[key], int | float) or backoff[key] < 0):
            raise StepConfigError(f"infrastructure['queue']['backoff']['{key}'] must be >= 0")


@dataclass(kw_only=True)
class Step:
    """Fields every step type has."""

    type: ClassVar[str] = ""
    handler_params: ClassVar[tuple[str, ...]] = ()

    name: str
    description: str = ""
    flows: list[str] = field(default_factory=list)
    emits: list[Any] = field(default_factory=list)
    virtual_emits: list[Any] = field(default_factory=list)
    virtual_subscribes: list[str] = field(default_factory=list)
    infrastructure: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z][\w.\-]*", self.name):
            raise StepConfigError(
                f"name must be a word such as 'SendWelcomeEmail', not {self.name!r}"
            )
        self.flows = _topics(self.flows, "flows")
        self.emits = _emits(self.emits, "emits")
        self.virtual_emits = _emits(self.virtual_emits, "virtual_emits")
        self.virtual_subscribes = _topics(self.virtual_subscribes, "virtual_subscribes")
        self.queue = _queue_policy(self.infrastructure)

    @property
    def emit_topics(self):
        return {emit.topic for emit in self.emits}

    @property
    def subscribe_topics(self):
        return ()


@dataclass(kw_only=True)
class ApiStep(Step):
    """Answers HTTP at ``method path``; the handler is ``handler(request, ctx)``.

    ``middleware`` wraps the handler (see ``middleware``); ``permission_classes``,
    ``authentication_classes`` and ``throttle_classes`` are DRF's, for this step only.
    """

    type: ClassVar[str] = "api"
    handler_params: ClassVar[tuple[str, ...]] = ("request", "ctx")

    method: str
    path: str
    body_schema: Any = None
    response_schema: dict = field(default_factory=dict)
    query_params: Any = None
    middleware: list = field(default_factory=list)
    # DRF's own policies; None keeps the project's REST_FRAMEWORK defaults.
    permission_classes: Any = None
    authentication_classes: Any = None
    throttle_classes: Any = None

    def __post_init__(self):
        super().__post_init__()
        self.method = str(self.method).upper()
        if self.method not in HTTP_METHODS:
            raise StepConfigError(
                f"method must be one of {', '.join(HTTP_METHODS)}, not {self.method!r}"
            )
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise StepConfigError(
                f"path must start with '/', e.g. '/users/:userId', not {self.path!r}"
            )
        for segment in self.path.strip("/").split("/"):
            if not PATH_SEGMENT.match(segment):
                raise StepConfigError(
                    f"path segment {segment!r} in {self.path!r} is not valid; "
                    "use plain segments and ':name' parameters, e.g. /users/:userId"
                )
        self.body_schema = _serializer(self.body_schema, "body_schema")
        self.query_params = _serializer(self.query_params, "query_params")
        if not isinstance(self.response_schema, dict):
            raise StepConfigError("response_schema maps status codes to serializers")
        self.response_schema = {
            int(status): _serializer(schema, f"response_schema[{status}]")
            for status, schema in self.response_schema.items()
        }
        self._check_policies()

    def _check_policies(self):
        if isinstance(self.middleware, str) or not isinstance(self.middleware, list | tuple):
            raise StepConfigError("middleware must be a list, e.g. middleware=[require_api_key]")
        for fn in self.middleware:
            if problem := middleware_problem(fn):
                raise StepConfigError(problem)
        self.middleware = tuple(self.middleware)
        for name, example in POLICY_EXAMPLES.items():
            if problem := classes_problem(getattr(self, name), name, example):
                raise StepConfigError(problem)

    @property
    def path_params(self):
        return [s[1:] for s in self.path.strip("/").split("/") if s.startswith(":")]

    @property
    def route(self):
        """The Django URL pattern for ``path`` (``:userId`` becomes ``<str:userId>``)."""
        segments = self.path.strip("/").split("/")
        converted = [f"<str:{s[1:]}>" if s.startswith(":") else s for s in segments]
        return "/".join(converted) + ("/" if self.path.endswith("/") and segments != [""] else "")


@dataclass(kw_only=True)
class EventStep(Step):
    """Runs in the background for each event on ``subscribes``; ``handler(input, ctx)``."""

    type: ClassVar[str] = "event"
    handler_params: ClassVar[tuple[str, ...]] = ("input", "ctx")

    subscribes: list[str]
    input: Any = None

    def __post_init__(self):
        super().__post_init__()
        self.subscribes = _topics(self.subscribes, "subscribes")
        if not self.subscribes:
            raise StepConfigError(
                "an event step subscribes to at least one topic, e.g. "
                "subscribes=['user.registered']"
            )
        self.input = _serializer(self.input, "input")

    @property
    def subscribe_topics(self):
        return self.subscribes


@dataclass(kw_only=True)
class CronStep(Step):
    """Runs on the ``cron`` expression (5 fields, or 6 with seconds); ``handler(ctx)``."""

    type: ClassVar[str] = "cron"
    handler_params: ClassVar[tuple[str, ...]] = ("ctx",)

    cron: str

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.cron, str) or not croniter.is_valid(self.cron):
            raise StepConfigError(
                f"cron {self.cron!r} is not a valid cron expression, "
                "e.g. '*/5 * * * *' (every five minutes)"
            )


@dataclass(kw_only=True)
class NoopStep(Step):
    """A node in the graph with no handler (an external system, a manual step)."""

    type: ClassVar[str] = "noop"
    handler_params: ClassVar[tuple[str, ...]] = ()


STEP_TYPES = {cls.type: cls for cls in (ApiStep, EventStep, CronStep, NoopStep)}
