"""Call one handler with a mock context: no database, no workers, no HTTP.

    result = call_handler("SendWelcomeEmail", {"userId": "u1", "name": "Ann", ...},
                          state={"users": {"u1": {...}}})
    result.topics                 # ["email.sent"]
    result.emitted("email.sent")  # [{...}]
    result.state["emails"]        # the state after the handler: {key: value}
    result.logged("Email sent successfully", userId="u1")

The context is the runtime's own ``Context`` (the same emit checks: an undeclared
topic raises, and so does data a subscriber's ``input`` refuses), holding its emits and
state writes as a background attempt does, over an in-memory state seeded with
``state``. As in a real attempt, they are kept only if
the handler returns; an exception propagates to the test. Event input is validated by
the step's ``input`` serializer, an API request's body by its ``body_schema``, and the
body an API handler answers by its ``response_schema`` (see ``response_schema``). An
``async def`` handler is run as the runtime runs it (``await ctx.emit(...)``).
"""

import json
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from importlib import import_module
from types import ModuleType
from typing import Any
from unittest import mock

from rest_framework.exceptions import ValidationError

from . import aio
from .context import Context
from .jsonutil import json_copy
from .logs import StepLogger, jsonable, redact
from .registry import RegisteredStep, registry
from .response_schema import check_response
from .runner import InvalidInput
from .schemas import validate
from .state import AttemptState
from .steps import ApiStep, EventStep
from .views import ApiRequest

Groups = dict[str, dict[str, Any]]  # state: {group: {key: value}}


@dataclass(frozen=True)
class LogLine:
    """One line a step logged: what ``ctx.logger`` stores (fields already redacted)."""

    step: str
    level: str
    message: str
    fields: dict[str, Any]
    trace_id: str = ""

    def matches(
        self,
        message: str | None = None,
        *,
        step: str | None = None,
        level: str | None = None,
        **fields: Any,
    ) -> bool:
        wanted = {"message": message, "step": step, "level": level}
        if any(v is not None and getattr(self, k) != v for k, v in wanted.items()):
            return False
        return all(self.fields.get(k, object()) == v for k, v in fields.items())


@dataclass(frozen=True)
class Emitted:
    """One emit of a handler run by ``call_handler`` (``options``: its ``delay`` and
    ``idempotency_key``, when given)."""

    topic: str
    data: Any
    options: dict[str, Any] = field(default_factory=dict)


class MemoryStore:
    """The state store's primitives over a dict: ``{group: {key: value}}``."""

    def __init__(self, groups: Groups | None = None) -> None:
        self.groups: Groups = json_copy(groups or {}, "state")

    def get(self, group: str, key: str, default: Any = None) -> Any:
        value = self.groups.get(group, {}).get(key, default)
        return json_copy(value, "state value")

    def set(self, group: str, key: str, value: Any) -> Any:
        value = json_copy(value, f"state value for {group}/{key}")
        self.groups.setdefault(group, {})[key] = value
        return value

    def delete(self, group: str, key: str) -> bool:
        group_values = self.groups.get(group, {})
        return group_values.pop(key, ...) is not ...

    def get_group(self, group: str) -> dict[str, Any]:
        return json_copy(self.groups.get(group, {}), "state group")

    def clear(self, group: str) -> int:
        return len(self.groups.pop(group, {}))

    def update(self, group: str, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        return self.set(group, key, fn(self.get(group, key, default)))


class RecordingLogger(StepLogger):
    """``ctx.logger`` for a mock context: keeps its lines (redacted) in ``lines``, and
    stores nothing."""

    def __init__(self, step_name: str, trace_id: str) -> None:
        super().__init__(step_name, trace_id)
        self.lines: list[LogLine] = []

    def _log(
        self, level: str, message: str, fields: Mapping[str, Any] | None, kwargs: dict[str, Any]
    ) -> None:
        data = redact(jsonable({**(fields or {}), **kwargs}))
        self.lines.append(LogLine(self.step_name, level, str(message), data, self.trace_id))

    def flush(self) -> None:
        pass


class MockContext(Context):
    """The runtime's context with in-memory state and a recording logger; emits are
    recorded in ``emitted`` (once committed) instead of being delivered."""

    logger: RecordingLogger

    def __init__(
        self, step: RegisteredStep, trace_id: str = "mock-trace", state: Groups | None = None
    ) -> None:
        super().__init__(step, trace_id, held=True, logger=RecordingLogger(step.name, trace_id))
        self.store = MemoryStore(state)
        self.state = AttemptState(self.store)
        self.emitted: list[Emitted] = []

    def _send(self, topic: str, data: Any, options: dict[str, Any]) -> None:
        options = {name: value for name, value in options.items() if value is not None}
        self.emitted.append(Emitted(topic, data, options))


@dataclass
class HandlerResult:
    """What ``call_handler`` saw: the return value, the emits, the log lines, the state."""

    returned: Any  # what the handler returned (an API step: {"status": ..., "body": ...})
    emits: list[Emitted]
    logs: list[LogLine]
    state: Groups
    trace_id: str

    @property
    def topics(self) -> list[str]:
        return [emit.topic for emit in self.emits]

    def emitted(self, topic: str) -> list[Any]:
        """The data of each emit on ``topic``, in order."""
        return [emit.data for emit in self.emits if emit.topic == topic]

    def logged(
        self, message: str | None = None, *, level: str | None = None, **fields: Any
    ) -> list[LogLine]:
        """The lines with this message (and level, and field values); truthy if any."""
        return [line for line in self.logs if line.matches(message, level=level, **fields)]

    @property
    def status(self) -> int | None:
        return self.returned.get("status") if isinstance(self.returned, dict) else None

    @property
    def body(self) -> Any:
        return self.returned.get("body") if isinstance(self.returned, dict) else None


def find_step(step: str | ModuleType | RegisteredStep) -> RegisteredStep:
    """A ``RegisteredStep`` from a step name, a step module (or its dotted name), or itself."""
    if isinstance(step, RegisteredStep):
        return step
    if isinstance(step, str):
        if (found := registry.get(step)) is not None:
            return found
        try:
            step = import_module(step)
        except ImportError:
            known = ", ".join(sorted(s.name for s in registry))
            raise LookupError(f"no step named {step!r}; the steps are: {known}") from None
    if isinstance(step, ModuleType):
        for registered in registry:
            if registered.module == step.__name__:
                return registered
        return RegisteredStep(
            step.config,
            getattr(step, "handler", None),
            step.__name__,
            step.__file__ or step.__name__,
        )
    raise TypeError(f"call_handler takes a step name or module, not {step!r}")


def handler_args(step: RegisteredStep, input: Any) -> tuple[Any, ...]:
    """The handler's arguments before ``ctx``, validated as the runtime validates them."""
    config = step.config
    if config.type == "cron":
        return ()
    if isinstance(config, ApiStep):
        return (api_request(config, input),)
    data = json_copy({} if input is None else input, f"input of {step.name}")
    schema = config.input if isinstance(config, EventStep) else None
    if schema is None:
        return (data,)
    try:
        return (validate(schema, data),)
    except ValidationError as exc:
        detail = json.dumps(exc.detail)
        raise InvalidInput(f"{step.name} input did not match its input schema: {detail}") from None


def api_request(config: ApiStep, input: Any) -> ApiRequest:
    """An ``ApiRequest`` from ``{"body": ..., "path_params": ..., "query_params": ...,
    "headers": ...}`` (or an ``ApiRequest``), its body and query validated."""
    if isinstance(input, ApiRequest):
        return input
    input = dict(input or {})
    unknown = set(input) - {"body", "path_params", "query_params", "headers"}
    if unknown:
        raise TypeError(
            f"an API step's input is {{'body', 'path_params', 'query_params', 'headers'}}, "
            f"not {sorted(unknown)}"
        )
    body, query = input.get("body"), dict(input.get("query_params") or {})
    if config.body_schema is not None:
        body = validate(config.body_schema, body if body is not None else {})
    if config.query_params is not None:
        query = validate(config.query_params, query, strict=False)
    return ApiRequest(
        path_params=dict(input.get("path_params") or {}),
        query_params=query,
        body=body,
        headers={k.lower(): v for k, v in (input.get("headers") or {}).items()},
        method=config.method,
    )


def call_handler(
    step: str | ModuleType | RegisteredStep,
    input: Any = None,
    *,
    state: Groups | None = None,
    trace_id: str = "mock-trace",
    sleep: bool = True,
) -> HandlerResult:
    """Call ``step``'s handler with ``input`` and a mock context; a ``HandlerResult``.

    ``sleep=False`` skips ``time.sleep`` in the handler (simulated waits).
    """
    registered = find_step(step)
    if registered.handler is None:
        raise TypeError(f"step {registered.name!r} is a {registered.type} step with no handler")
    ctx = MockContext(registered, trace_id, state)
    with mock.patch.object(time, "sleep", noop) if not sleep else nullcontext():
        returned = aio.call_handler(registered.handler, handler_args(registered, input), ctx)
    if isinstance(registered.config, ApiStep) and isinstance(returned, dict):
        check_response(registered, returned.get("status"), returned.get("body"), ctx)
    ctx.commit()
    return HandlerResult(returned, ctx.emitted, ctx.logger.lines, ctx.store.groups, trace_id)


def noop(*args: Any) -> None:
    pass
