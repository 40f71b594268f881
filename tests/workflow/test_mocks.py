"""call_handler: one handler with a mock context (in-memory state, recorded emits and logs).

These tests have no database (no django_db mark): a mock context never touches it.
"""

import sys
import types

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from workflow import InvalidEmit
from workflow.aio import NotAwaited
from workflow.context import UndeclaredEmit
from workflow.errors import ResponseSchemaError
from workflow.mocks import MemoryStore, call_handler
from workflow.response_schema import MESSAGE
from workflow.runner import InvalidInput
from workflow.steps import ApiStep, CronStep, EventStep, NoopStep


class NewUser(serializers.Serializer):
    userId = serializers.CharField()


def welcome(input, ctx):
    user = ctx.state.get("users", input["userId"])
    ctx.logger.info("Welcoming", userId=input["userId"], token="s3cret")
    ctx.state.set("emails", input["userId"], {"to": user["email"]})
    ctx.state.update("counts", "sent", lambda n: (n or 0) + 1)
    ctx.emit("email.sent", {"userId": input["userId"]})
    ctx.emit({"topic": "email.sent", "data": {"again": True}, "delay": 5})


@pytest.fixture
def welcome_step(steps):
    config = EventStep(
        name="Welcome", subscribes=["user.registered"], emits=["email.sent"], input=NewUser
    )
    return steps.add(config, welcome, "app.steps.welcome_step", "app/steps/welcome_step.py")


USERS = {"users": {"u1": {"email": "ann@example.com"}}}


def test_call_handler_returns_emits_logs_and_state(welcome_step):
    """The result holds each emit (with its options), each log line (redacted) and the
    state after the handler, seeded from ``state``."""
    result = call_handler("Welcome", {"userId": "u1"}, state=USERS)
    assert result.topics == ["email.sent", "email.sent"]
    assert result.emitted("email.sent") == [{"userId": "u1"}, {"again": True}]
    assert result.emits[1].options == {"delay": 5}
    [line] = result.logged("Welcoming")
    assert (line.step, line.level, line.fields) == (
        "Welcome",
        "info",
        {"userId": "u1", "token": "[redacted]"},
    )
    assert result.logged("Welcoming", userId="u1")
    assert not result.logged("Welcoming", userId="u2")
    assert result.state == {
        "users": {"u1": {"email": "ann@example.com"}},
        "emails": {"u1": {"to": "ann@example.com"}},
        "counts": {"sent": 1},
    }
    assert result.returned is None


def test_the_seed_state_is_not_changed(welcome_step):
    seed = {"users": {"u1": {"email": "ann@example.com"}}}
    call_handler("Welcome", {"userId": "u1"}, state=seed)
    assert seed == {"users": {"u1": {"email": "ann@example.com"}}}


def test_input_is_validated_by_the_steps_serializer(welcome_step):
    with pytest.raises(InvalidInput, match='Welcome input did not match .*"userId"'):
        call_handler("Welcome", {"id": "u1"}, state=USERS)


def test_an_undeclared_emit_raises_as_in_the_runtime(steps):
    steps.add(EventStep(name="Loud", subscribes=["t"]), lambda input, ctx: ctx.emit("x", {}))
    with pytest.raises(UndeclaredEmit, match="emitted 'x', which is not in its emits"):
        call_handler("Loud", {})


def test_an_emit_a_subscriber_refuses_raises_as_in_the_runtime(steps):
    """call_handler checks each emit against the subscribers' input, as the runtime does:
    data a subscriber refuses raises InvalidEmit naming it and the field."""
    steps.add(
        EventStep(name="Loud", subscribes=["t"], emits=["x"]), lambda i, ctx: ctx.emit("x", {})
    )
    steps.add(EventStep(name="Hears", subscribes=["x"], input=NewUser), lambda i, ctx: None)
    with pytest.raises(InvalidEmit, match=r'the input of Hears \(NewUser\) says \{"userId"'):
        call_handler("Loud", {})


def test_a_failing_handler_raises_and_keeps_nothing(steps):
    """The exception reaches the test, as a failed attempt would be recorded."""

    def failing(input, ctx):
        ctx.emit("t2", {})
        raise RuntimeError("boom")

    steps.add(EventStep(name="Fails", subscribes=["t"], emits=["t2"]), failing)
    with pytest.raises(RuntimeError, match="boom"):
        call_handler("Fails", {})


class Body(serializers.Serializer):
    name = serializers.CharField(min_length=2)


def greet(request, ctx):
    ctx.emit("greeted", {"name": request.body["name"], "id": request.path_params["id"]})
    return {"status": 201, "body": {"hello": request.body["name"], "q": request.query_params}}


@pytest.fixture
def greet_step(steps):
    config = ApiStep(
        name="Greet", method="POST", path="/greet/:id", emits=["greeted"], body_schema=Body
    )
    return steps.add(config, greet)


def test_an_api_handler_gets_a_request_and_its_response_is_returned(greet_step):
    result = call_handler(
        "Greet",
        {"body": {"name": "Ann"}, "path_params": {"id": "7"}, "query_params": {"q": "1"}},
    )
    assert (result.status, result.body) == (201, {"hello": "Ann", "q": {"q": "1"}})
    assert result.emitted("greeted") == [{"name": "Ann", "id": "7"}]


def test_an_api_body_is_validated_by_its_body_schema(greet_step):
    with pytest.raises(ValidationError) as error:
        call_handler("Greet", {"body": {"name": "A"}, "path_params": {"id": "7"}})
    assert "name" in error.value.detail


class Hello(serializers.Serializer):
    hello = serializers.CharField()
    q = serializers.DictField()


def test_an_api_body_that_breaks_its_response_schema_raises_in_tests(steps, settings):
    """The body an API handler answers is checked by its response_schema: under pytest
    a body that breaks it raises, naming the field, and keeps no emit; in "log" mode the
    result holds the warning."""
    config = ApiStep(
        name="Greet",
        method="POST",
        path="/greet/:id",
        emits=["greeted"],
        response_schema={201: Hello},
    )
    steps.add(config, greet)
    request = {"body": {"name": 7}, "path_params": {"id": "7"}}
    with pytest.raises(ResponseSchemaError, match=r'\{"hello": \["Not a valid string.'):
        call_handler("Greet", request)
    settings.WORKFLOW = {"RESPONSE_SCHEMA_ERRORS": "log"}
    result = call_handler("Greet", request)
    assert result.logged(MESSAGE, status=201, errors={"hello": ["Not a valid string."]})
    assert result.status == 201


def test_an_api_input_with_unknown_keys_is_refused(greet_step):
    with pytest.raises(TypeError, match="an API step's input is"):
        call_handler("Greet", {"name": "Ann"})


def test_a_cron_handler_is_called_with_the_context_only(steps):
    steps.add(CronStep(name="Tick", cron="* * * * *", emits=["ticked"]), tick)
    assert call_handler("Tick").emitted("ticked") == [{"trace": "mock-trace"}]
    assert call_handler("Tick", trace_id="t-1").emitted("ticked") == [{"trace": "t-1"}]


def tick(ctx):
    ctx.emit("ticked", {"trace": ctx.trace_id})


def test_a_noop_step_has_no_handler_to_call(steps):
    steps.add(NoopStep(name="Human"), None)
    with pytest.raises(TypeError, match="'Human' is a noop step with no handler"):
        call_handler("Human")


async def async_welcome(input, ctx):
    user = await ctx.state.get("users", input["userId"])
    await ctx.state.set("emails", input["userId"], {"to": user["email"]})
    await ctx.emit("email.sent", {"userId": input["userId"]})


def test_an_async_handler_is_run_with_awaitable_emit_and_state(steps):
    config = EventStep(name="AsyncWelcome", subscribes=["u"], emits=["email.sent"], input=NewUser)
    steps.add(config, async_welcome)
    result = call_handler("AsyncWelcome", {"userId": "u1"}, state=USERS)
    assert result.emitted("email.sent") == [{"userId": "u1"}]
    assert result.state["emails"] == {"u1": {"to": "ann@example.com"}}


def test_an_async_handler_that_forgets_await_fails_as_in_the_runtime(steps):
    async def forgetful(input, ctx):
        ctx.emit("email.sent", {})

    steps.add(EventStep(name="Forgets", subscribes=["u"], emits=["email.sent"]), forgetful)
    with pytest.raises(NotAwaited):
        call_handler("Forgets", {})


def test_sleep_false_skips_sleeps(steps):
    import time

    steps.add(EventStep(name="Slow", subscribes=["t"]), lambda input, ctx: time.sleep(30))
    started = time.monotonic()
    call_handler("Slow", {}, sleep=False)
    assert time.monotonic() - started < 5


def test_a_step_is_found_by_name_module_or_dotted_path(steps, monkeypatch):
    """A module that is not registered is used from its config and handler."""
    module = types.ModuleType("app.steps.echo_step")
    module.__file__ = "app/steps/echo_step.py"
    module.config = EventStep(name="Echo", subscribes=["t"], emits=["t2"])
    module.handler = lambda input, ctx: ctx.emit("t2", input)
    monkeypatch.setitem(sys.modules, "app.steps.echo_step", module)
    assert call_handler(module, {"a": 1}).emitted("t2") == [{"a": 1}]
    assert call_handler("app.steps.echo_step", {"a": 2}).emitted("t2") == [{"a": 2}]


def test_an_unknown_step_is_a_lookup_error_naming_the_steps(welcome_step):
    with pytest.raises(LookupError, match="no step named 'Wellcome'; the steps are: Welcome"):
        call_handler("Wellcome", {})


def test_the_real_users_steps_are_found_by_name():
    result = call_handler("GetUserStatus", {"path_params": {"userId": "u1"}}, state={"users": {}})
    assert (result.status, result.body) == (404, {"error": "User not found"})


def test_memory_store_copies_values():
    store = MemoryStore()
    value = {"a": [1]}
    store.set("g", "k", value)
    value["a"].append(2)
    assert store.get("g", "k") == {"a": [1]}
    assert store.delete("g", "k") and not store.delete("g", "k")
    with pytest.raises(TypeError, match="must be JSON"):
        store.set("g", "k", {1, 2})


def test_memory_store_deletes_a_stored_null():
    store = MemoryStore({"g": {"k": None}})
    assert store.delete("g", "k")
    assert store.get_group("g") == {}
