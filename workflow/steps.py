"""Step configuration types (Motia's ``api``, ``event``, ``cron`` and ``noop``).

A step module declares ``config = EventStep(...)`` (or ``ApiStep``, ``CronStep``,
``NoopStep``) and, for every type but noop, a plain ``handler`` function. The field
names are Motia's, in Python spelling. A config that cannot work fails at
construction with a ``StepConfigError`` saying what to write instead.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from croniter import croniter
from rest_framework import serializers

from .errors import StepConfigError
from .flow_control import FlowControl
from .flow_control import configure as configure_flow
from .infrastructure import check_infrastructure
from .middleware import classes_problem, middleware_problem
from .topics import TopicError, check_name, check_pattern, is_pattern

__all__ = ["STEP_TYPES", "ApiStep", "CronStep", "Emit", "EventStep", "NoopStep", "StepConfigError"]

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
POLICY_EXAMPLES = {
    "permission_classes": "IsAuthenticated",
    "authentication_classes": "SessionAuthentication",
    "throttle_classes": "AnonRateThrottle",
}
PATH_SEGMENT = re.compile(r"^(:[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9._~\-]*)$")

Schema: TypeAlias = type[serializers.BaseSerializer] | serializers.BaseSerializer
"""A DRF serializer, as a class (``NewUserSerializer``) or an instance (``Foo(many=True)``)."""


@dataclass(frozen=True)
class Emit:
    """One declared emit: a topic, with an optional edge label for the graph.

    ``conditional``: the step emits it only sometimes (a cycle through it ends by itself).
    ``open``: the topic is meant for subscribers outside this project, or still to come;
    nobody subscribing to it is no fault (no ``workflow.W002``; an open end in the graph).
    ``schema``: a serializer the emitted data must pass, as each subscriber's ``input``
    must (``manage.py check`` compares them: ``workflow.W005``).
    """

    topic: str
    label: str = ""
    conditional: bool = False
    open: bool = False
    schema: Schema | None = None


EMIT_FLAGS = ("conditional", "open")


def _emit(item: dict[str, Any], field_name: str) -> Emit:
    """The ``Emit`` of one ``{"topic": ..., ...}`` entry."""
    unknown = set(item) - {"topic", "label", "schema", *EMIT_FLAGS}
    if unknown:
        raise StepConfigError(
            f"{field_name} entry {item!r} has unknown keys {sorted(unknown)}; "
            "use 'topic', 'label', 'conditional', 'open' and 'schema'"
        )
    for flag in EMIT_FLAGS:
        if not isinstance(item.get(flag, False), bool):
            raise StepConfigError(
                f"{field_name} entry {item!r}: {flag!r} is True or False, not {item[flag]!r}; "
                f"e.g. {{'topic': {item['topic']!r}, {flag!r}: True}}"
            )
    flags = {flag: item.get(flag, False) for flag in EMIT_FLAGS}
    schema = _serializer(item.get("schema"), f"{field_name} entry {item['topic']!r}: 'schema'")
    return Emit(item["topic"], item.get("label", ""), **flags, schema=schema)


def _emits(value: Any, field_name: str) -> tuple[Emit, ...]:
    if isinstance(value, str | dict):
        raise StepConfigError(f"{field_name} must be a list, e.g. {field_name}=[{value!r}]")
    result = []
    for item in value or ():
        if isinstance(item, str) and item:
            result.append(Emit(item))
        elif isinstance(item, dict) and isinstance(item.get("topic"), str):
            result.append(_emit(item, field_name))
        else:
            raise StepConfigError(
                f"{field_name} entries are topic strings or "
                f"{{'topic': ..., 'label': ...}} dicts, not {item!r}"
            )
        try:
            check_name(result[-1].topic, field_name)
        except TopicError as exc:
            raise StepConfigError(str(exc)) from None
    return tuple(result)


def _topics(value: Any, field_name: str, *, patterns: bool = False) -> tuple[str, ...]:
    """Names (flows) or, with ``patterns``, subscriptions: topics and topic patterns
    (``workflow.topics``)."""
    if isinstance(value, str):
        raise StepConfigError(f"{field_name} must be a list, e.g. {field_name}=[{value!r}]")
    topics = tuple(value or ())
    for topic in topics:
        if not isinstance(topic, str) or not topic:
            raise StepConfigError(f"{field_name} entries are topic names, not {topic!r}")
        if patterns:
            try:
                check_pattern(topic, field_name)
            except TopicError as exc:
                raise StepConfigError(str(exc)) from None
    return topics


JOIN_EXAMPLE = "join={'key': 'bookingId', 'timeout': 30, 'on_timeout': 'booking.join_timed_out'}"


def _join(value: Any, subscribes: Sequence[str]) -> dict[str, Any]:
    """A join's config, checked: ``key`` (a field of every arrival's data), ``timeout``
    (seconds from the first arrival, 30 by default) and ``on_timeout`` (the topic a
    timed-out or late arrival is emitted on)."""
    if not isinstance(value, dict):
        raise StepConfigError(f"join is a dict, e.g. {JOIN_EXAMPLE}")
    unknown = set(value) - {"key", "timeout", "on_timeout"}
    if unknown:
        raise StepConfigError(
            f"join has unknown keys {sorted(unknown)}; use 'key', 'timeout' and "
            f"'on_timeout', e.g. {JOIN_EXAMPLE}"
        )
    key, timeout = value.get("key"), value.get("timeout", 30)
    on_timeout = value.get("on_timeout")
    if not isinstance(key, str) or not key:
        raise StepConfigError(
            f"join needs a 'key': the field of each event's data that says which arrivals "
            f"belong together, e.g. {JOIN_EXAMPLE}"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise StepConfigError(f"join 'timeout' is a number of seconds above 0, not {timeout!r}")
    if not isinstance(on_timeout, str) or not on_timeout:
        raise StepConfigError(
            "join needs 'on_timeout': the topic emitted when the join times out, or an "
            f"event arrives after it ran (the compensation's subscribe), e.g. {JOIN_EXAMPLE}"
        )
    try:
        check_name(on_timeout, "join 'on_timeout'")
    except TopicError as exc:
        raise StepConfigError(str(exc)) from None
    if len(subscribes) < 2 or any(is_pattern(topic) for topic in subscribes):
        raise StepConfigError(
            "a join waits for two or more topics named in subscribes (no patterns), e.g. "
            "subscribes=['flight.reserved', 'hotel.reserved', 'car.reserved']"
        )
    return {"key": key, "timeout": float(timeout), "on_timeout": on_timeout}


def _serializer(value: Any, field_name: str) -> Schema | None:
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


@dataclass(kw_only=True)
class Step:
    """Fields every step type has."""

    type: ClassVar[str] = ""
    handler_params: ClassVar[tuple[str, ...]] = ()

    name: str
    description: str = ""
    flows: Sequence[str] = field(default_factory=list)
    # Topic names or {"topic": ..., "label": ..., "conditional": ...}; kept as Emit.
    emits: Sequence[Any] = field(default_factory=list)
    virtual_emits: Sequence[Any] = field(default_factory=list)
    virtual_subscribes: Sequence[str] = field(default_factory=list)
    infrastructure: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z][\w.\-]*", self.name):
            raise StepConfigError(
                f"name must be a word such as 'SendWelcomeEmail', not {self.name!r}"
            )
        self.flows = _topics(self.flows, "flows")
        self.emits = _emits(self.emits, "emits")
        self.virtual_emits = _emits(self.virtual_emits, "virtual_emits")
        self.virtual_subscribes = _topics(
            self.virtual_subscribes, "virtual_subscribes", patterns=True
        )
        self.queue = check_infrastructure(self.infrastructure)

    @property
    def emit_topics(self) -> set[str]:
        return {emit.topic for emit in self.emits}

    @property
    def subscribe_topics(self) -> Sequence[str]:
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
    body_schema: Schema | None = None
    response_schema: dict[int, Schema | None] = field(default_factory=dict)
    query_params: Schema | None = None
    middleware: Sequence[Callable[..., Any]] = field(default_factory=list)
    # DRF's own policies; None keeps the project's REST_FRAMEWORK defaults.
    permission_classes: Sequence[Any] | None = None
    authentication_classes: Sequence[Any] | None = None
    throttle_classes: Sequence[Any] | None = None

    def __post_init__(self) -> None:
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

    def _check_policies(self) -> None:
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
    def path_params(self) -> list[str]:
        return [s[1:] for s in self.path.strip("/").split("/") if s.startswith(":")]

    @property
    def route(self) -> str:
        """The Django URL pattern for ``path`` (``:userId`` becomes ``<str:userId>``)."""
        segments = self.path.strip("/").split("/")
        converted = [f"<str:{s[1:]}>" if s.startswith(":") else s for s in segments]
        return "/".join(converted) + ("/" if self.path.endswith("/") and segments != [""] else "")


@dataclass(kw_only=True)
class EventStep(Step):
    """Runs in the background for each event on ``subscribes``; ``handler(input, ctx)``."""

    type: ClassVar[str] = "event"
    handler_params: ClassVar[tuple[str, ...]] = ("input", "ctx")
    flow_control: FlowControl | None = field(init=False, default=None)

    subscribes: Sequence[str]
    input: Schema | None = None
    # Run once when every subscribed topic has arrived for one key (``workflow.joins``):
    # {"key": "bookingId", "timeout": 30, "on_timeout": "booking.join_timed_out"}.
    join: dict[str, Any] | None = None
    # Flow control (``workflow.flow_control``): {"limit": 1, "key": "userId"} or an int;
    # {"limit": 5, "period": 1}; {"period": 2, "key": "userId"}; an int or a function.
    concurrency: int | dict[str, Any] | None = None
    rate_limit: dict[str, Any] | None = None
    debounce: dict[str, Any] | None = None
    priority: int | Callable[[Any], int] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.subscribes = _topics(self.subscribes, "subscribes", patterns=True)
        if not self.subscribes:
            raise StepConfigError(
                "an event step subscribes to at least one topic, e.g. "
                "subscribes=['user.registered']"
            )
        self.input = _serializer(self.input, "input")
        if self.join is not None:
            self.join = _join(self.join, self.subscribes)
            if self.join["on_timeout"] not in self.emit_topics:  # the framework emits it
                self.emits = (*self.emits, Emit(self.join["on_timeout"], label="timeout"))
        self.flow_control = configure_flow(
            self.concurrency, self.rate_limit, self.debounce, self.priority
        )
        if self.join is not None and self.debounce is not None:
            raise StepConfigError(
                "a join step cannot debounce: each arrival is a part of the join, none "
                "supersedes another; debounce the step that emits them instead"
            )

    @property
    def subscribe_topics(self) -> Sequence[str]:
        return self.subscribes


@dataclass(kw_only=True)
class CronStep(Step):
    """Runs on the ``cron`` expression (5 fields, or 6 with seconds); ``handler(ctx)``."""

    type: ClassVar[str] = "cron"
    handler_params: ClassVar[tuple[str, ...]] = ("ctx",)

    cron: str

    def __post_init__(self) -> None:
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


STEP_TYPES: dict[str, type[Step]] = {
    cls.type: cls for cls in (ApiStep, EventStep, CronStep, NoopStep)
}
