"""Call one handler with a mock context: no database, no workers, no HTTP.

    result = call_handler("SendWelcomeEmail", {"userId": "u1", "name": "Ann", ...},
                          state={"users": {"u1": {...}}})
    result.topics                 # ["email.sent"]
    result.emitted("email.sent")  # [{...}]
    result.state["emails"]        # the state after the handler: {key: value}
    result.logged("Email sent successfully", userId="u1")

The context is the runtime's own ``Context`` (the same emit checks: an undeclared
topic raises), holding its emits and state writes as a background attempt does, over
an in-memory state seeded with ``state``. As in a real attempt, they are kept only if
the handler returns; an exception propagates to the test. Event input is validated by
the step's ``input`` serializer, an API request's body by its ``body_schema``. An
``async def`` handler is run as the runtime runs it (``await ctx.emit(...)``).
"""

import json
import time
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
from .logs import jsonable, redact
from .registry import RegisteredStep, registry
from .runner import InvalidInput
from .schemas import validate
from .state import AttemptState
from .views import ApiRequest


@dataclass(frozen=True)
class LogLine:
    """One line a step logged: what ``ctx.logger`` stores (fields already redacted)."""

    step: str
    level: str
    message: str
    fields: dict
    trace_id: str = ""

    def matches(self, message=None, *, step=None, level=None, **fields):
        wanted = {"message": message, "step": step, "level": level}
        if any(v is not None and getattr(self, k) != v for k, v in wanted.items()):
            return False
        return all(self.fields.get(k, object()) == v for k, v in fields.items())


@dataclass(frozen=True)
class Emitted:
    topic: str
    data: Any
    options: dict = field(default_factory=dict)


class MemoryStore:
    """The state store's primitives over a dict: ``{group: {key: value}}``."""

    def __init__(self, groups=None):
        self.groups = json_copy(groups or {}, "state")

    def get(self, group, key, default=None):
        value = self.groups.get(group, {}).get(key, default)
        return json_copy(value, "state value")

    def set(self, group, key, value):
        value = json_copy(value, f"state value for {group}/{key}")
        self.groups.setdefault(group, {})[key] = value
        return value

    def delete(self, group, key):
        group_values = self.groups.get(group, {})
        return group_values.pop(key, ...) is not ...

    def get_group(self, group):
        return json_copy(self.groups.get(group, {}), "state group")

    def clear(self, group):
        return len(self.groups.pop(group, {}))

    def update(self, group, key, fn, default=None):
        return self.set(group, key, fn(self.get(group, key, default)))


class RecordingLogger:
    """``ctx.logger`` for a mock context: keeps its lines (redacted) in ``lines``."""

    def __init__(self, step_name, trace_id):
        self.step_name = step_name
        self.trace_id = trace_id
        self.lines = []

    def _log(self, level, message, fields, kwargs):
        data = redact(jsonable({**(fields or {}), **kwargs}))
        self.lines.append(LogLine(self.step_name, level, str(message), data, self.trace_id))

    def debug(self, message, fields=None, **kwargs):
        self._log("debug", message, fields, kwargs)

    def info(self, message, fields=None, **kwargs):
        self._log("info", message, fields, kwargs)

    def warn(self, message, fields=None, **kwargs):
        self._log("warn", message, fields, kwargs)

    warning = warn

    def error(self, message, fields=None, **kwargs):
        self._log("error", message, fields, kwargs)

    def flush(self):
        pass


class MockContext(Context):
    """The runtime's context with in-memory state and a recording logger; emits are
    recorded in ``emitted`` (once committed) instead of being delivered."""

    def __init__(self, step, trace_id="mock-trace", state=None):
        super().__init__(step, trace_id, held=True, logger=RecordingLogger(step.name, trace_id))
        self.store = MemoryStore(state)
        self.state = AttemptState(self.store)
        self.emitted = []

    def _send(self, topic, data, options):
        options = {name: value for name, value in options.items() if value is not None}
        self.emitted.append(Emitted(topic, data, options))


@dataclass
class HandlerResult:
    returned: Any  # what the handler returned (an API step: {"status": ..., "body": ...})
    emits: list
    logs: list
    state: dict
    trace_id: str

    @property
    def topics(self):
        return [emit.topic for emit in self.emits]

    def emitted(self, topic):
        """The data of each emit on ``topic``, in order."""
        return [emit.data for emit in self.emits if emit.topic == topic]

    def logged(self, message=None, *, level=None, **fields):
        """The lines with this message (and level, and field values); truthy if any."""
        return [line for line in self.logs if line.matches(message, level=level, **fields)]

    @property
    def status(self):
        return self.returned.get("status") if isinstance(self.returned, dict) else None

    @property
    def body(self):
        return self.returned.get("body") if isinstance(self.returned, dict) else None


def find_step(step):
    """A ``RegisteredStep`` from a step name, a step module (or its dotted name), or itself."""
    if isinstance(step, RegisteredStep):
        return step
    if isinstance(step, str):
        if registry.get(step) is not None:
            return registry.get(step)
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
            step.config, getattr(step, "handler", None), step.__name__, step.__file__
        )
    raise TypeError(f"call_handler takes a step name or module, not {step!r}")


def handler_args(step, input):
    """The handler's arguments before ``ctx``, validated as the runtime validates them."""
    config = step.config
    if config.type == "cron":
        return ()
    if config.type == "api":
        return (api_request(config, input),)
    data = json_copy({} if input is None else input, f"input of {step.name}")
    if config.input is None:
        return (data,)
    try:
        return (validate(config.input, data),)
    except ValidationError as exc:
        detail = json.dumps(exc.detail)
        raise InvalidInput(f"{step.name} input did not match its input schema: {detail}") from None


def api_request(config, input):
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
        query = validate(config.query_params, query)
    return ApiRequest(
        path_params=dict(input.get("path_params") or {}),
        query_params=query,
        body=body,
        headers={k.lower(): v for k, v in (input.get("headers") or {}).items()},
        method=config.method,
    )


def call_handler(step, input=None, *, state=None, trace_id="mock-trace", sleep=True):
    """Call ``step``'s handler with ``input`` and a mock context; a ``HandlerResult``.

    ``sleep=False`` skips ``time.sleep`` in the handler (simulated waits).
    """
    registered = find_step(step)
    if registered.handler is None:
        raise TypeError(f"step {registered.name!r} is a {registered.type} step with no handler")
    ctx = MockContext(registered, trace_id, state)
    with mock.patch.object(time, "sleep", noop) if not sleep else nullcontext():
        returned = aio.call_handler(registered.handler, handler_args(registered, input), ctx)
    ctx.commit()
    return HandlerResult(returned, ctx.emitted, ctx.logger.lines, ctx.store.groups, trace_id)


def noop(*args):
    pass
