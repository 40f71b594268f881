"""API step middleware (global, flow, step; able to short-circuit) and DRF's permission,
authentication and throttle classes on a step's config."""

import types

import pytest
from django.core.cache import cache
from rest_framework import authentication, exceptions, permissions, serializers, throttling

from workflow.checks import check_steps
from workflow.models import Event, Run, StateEntry
from workflow.steps import ApiStep, EventStep, StepConfigError

HERE = "tests.workflow.test_middleware"


@pytest.fixture
def calls():
    """What the middleware and handlers below saw, in order."""
    CALLS.clear()
    yield CALLS
    CALLS.clear()


CALLS = []


def recording(name):
    def middleware(request, ctx, next):
        CALLS.append(f"{name}:before")
        result = next()
        CALLS.append(f"{name}:after")
        return result

    middleware.__name__ = name
    return middleware


global_mw = recording("global")
flow_mw = recording("flow")
other_flow_mw = recording("other-flow")
step_mw = recording("step")


def cors(request, ctx, next):
    result = next()
    result.setdefault("headers", {})["Access-Control-Allow-Origin"] = "*"
    return result


def handler(request, ctx):
    CALLS.append("handler")
    return {"status": 200, "body": {"ok": True}}


def add_api(steps, name="Hello", path="/hello", method="GET", fn=handler, **config):
    return steps.add(ApiStep(name=name, method=method, path=path, **config), fn, "", "h_step.py")


# Middleware ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_middleware_runs_global_then_flow_then_step_around_the_handler(
    api, steps, serve, settings, calls
):
    """The chain is WORKFLOW API_MIDDLEWARE, then FLOW_MIDDLEWARE of the step's flows in
    order, then the step's own middleware; each wraps the next, the handler innermost."""
    settings.WORKFLOW = {
        "API_MIDDLEWARE": [f"{HERE}.global_mw"],
        "FLOW_MIDDLEWARE": {"f1": [f"{HERE}.flow_mw"], "f2": [f"{HERE}.other_flow_mw"]},
    }
    serve(add_api(steps, flows=["f1", "f2"], middleware=[step_mw]))
    assert api.get("/hello").status_code == 200
    assert calls == [
        "global:before",
        "flow:before",
        "other-flow:before",
        "step:before",
        "handler",
        "step:after",
        "other-flow:after",
        "flow:after",
        "global:after",
    ]


@pytest.mark.django_db
def test_flow_middleware_wraps_only_the_steps_of_its_flow(api, steps, serve, settings, calls):
    """FLOW_MIDDLEWARE for a flow runs for that flow's steps and no others."""
    settings.WORKFLOW = {"FLOW_MIDDLEWARE": {"billing": [f"{HERE}.flow_mw"]}}
    serve(
        add_api(steps, name="Pay", path="/pay", flows=["billing"]),
        add_api(steps, name="Hello", path="/hello", flows=["greeting"]),
    )
    api.get("/pay")
    assert calls == ["flow:before", "handler", "flow:after"]
    calls.clear()
    api.get("/hello")
    assert calls == ["handler"]


@pytest.mark.django_db
def test_global_middleware_from_settings_adds_a_cors_header_to_every_step(
    api, steps, serve, settings
):
    """A middleware in API_MIDDLEWARE (here adding a CORS header) applies to every API step."""
    settings.WORKFLOW = {"API_MIDDLEWARE": [f"{HERE}.cors"]}
    serve(add_api(steps), add_api(steps, name="Other", path="/other", flows=["x"]))
    for url in ("/hello", "/other"):
        response = api.get(url)
        assert response.status_code == 200
        assert response["Access-Control-Allow-Origin"] == "*"
    settings.WORKFLOW = {}
    assert not api.get("/hello").has_header("Access-Control-Allow-Origin")


def require_key(request, ctx, next):
    if request.headers.get("x-api-key") != "s3cret":
        ctx.logger.warn("Refused", reason="no key")
        return {"status": 401, "body": {"error": "Unauthorized"}}
    return next()


@pytest.mark.django_db(transaction=True)
def test_a_middleware_that_does_not_call_next_answers_and_the_handler_never_runs(
    api, steps, serve, calls
):
    """Returning a response without calling next() short-circuits: the handler, later
    middleware and their emits do not run; the run is recorded, refused with its 401."""

    def emitting(request, ctx):
        CALLS.append("handler")
        ctx.emit("hello.said", {})
        return {"status": 200, "body": {}}

    serve(add_api(steps, fn=emitting, emits=["hello.said"], middleware=[require_key, step_mw]))
    steps.add(EventStep(name="Listen", subscribes=["hello.said"]), lambda input, ctx: None)
    refused = api.get("/hello")
    assert (refused.status_code, refused.json()) == (401, {"error": "Unauthorized"})
    assert calls == []
    assert not Event.objects.exists()
    run = Run.objects.get()
    assert (run.status, run.status_code) == (Run.Status.REFUSED, 401)
    allowed = api.get("/hello", HTTP_X_API_KEY="s3cret")
    assert allowed.status_code == 200
    assert calls == ["step:before", "handler", "step:after"]
    assert Event.objects.get().topic == "hello.said"


class Greeting(serializers.Serializer):
    name = serializers.CharField()
    times = serializers.IntegerField()


@pytest.mark.django_db(transaction=True)
def test_middleware_sees_the_validated_request_and_shares_the_transaction(api, steps, serve):
    """A middleware gets the validated body; if it raises after next(), the handler's
    state writes and emits are rolled back with it (500)."""
    seen = {}

    def inspect_then_fail(request, ctx, next):
        seen["body"] = request.body
        next()
        raise RuntimeError("audit store down")

    def writing(request, ctx):
        ctx.state.set("greetings", "1", request.body)
        ctx.emit("hello.said", request.body)
        return {"status": 201, "body": {}}

    config = {"emits": ["hello.said"], "body_schema": Greeting, "middleware": [inspect_then_fail]}
    serve(add_api(steps, method="POST", fn=writing, **config))
    steps.add(EventStep(name="Listen", subscribes=["hello.said"]), lambda input, ctx: None)
    response = api.post("/hello", {"name": " Ann ", "times": 3}, format="json")  # trimmed
    assert response.status_code == 500
    assert seen["body"] == {"name": "Ann", "times": 3}
    assert not StateEntry.objects.exists()
    assert not Event.objects.exists()
    assert Run.objects.get().error == "RuntimeError: audit store down"


async def async_tag(request, ctx, next):
    CALLS.append("async:before")
    result = await next()
    result["body"]["tagged"] = True
    return result


async def async_handler(request, ctx):
    CALLS.append("async-handler")
    await ctx.emit("hello.said", {})
    return {"status": 200, "body": {}}


@pytest.mark.django_db
def test_sync_and_async_middleware_and_handlers_chain_in_order(api, steps, serve, calls):
    """Async middleware awaits next(); sync and async links mix in the declared order."""
    mw = [step_mw, async_tag, recording("inner")]
    serve(add_api(steps, fn=async_handler, emits=["hello.said"], middleware=mw))
    steps.add(EventStep(name="Listen", subscribes=["hello.said"]), lambda input, ctx: None)
    response = api.get("/hello")
    assert (response.status_code, response.json()) == (200, {"tagged": True})
    assert calls == [
        "step:before",
        "async:before",
        "inner:before",
        "async-handler",
        "inner:after",
        "step:after",
    ]
    assert Event.objects.get().topic == "hello.said"


def test_a_middleware_that_is_not_a_function_is_a_config_error_with_the_fix():
    """Non-callable, string and wrongly-shaped middleware are refused at construction."""
    with pytest.raises(StepConfigError, match=r"middleware entries are functions `def "):
        ApiStep(name="A", method="GET", path="/a", middleware=[42])
    with pytest.raises(StepConfigError, match=r"import the function and list it"):
        ApiStep(name="A", method="GET", path="/a", middleware=[f"{HERE}.cors"])
    with pytest.raises(StepConfigError, match=r"cannot be called as mw\(request, ctx, next\)"):
        ApiStep(name="A", method="GET", path="/a", middleware=[lambda request, ctx: None])
    with pytest.raises(StepConfigError, match=r"middleware must be a list"):
        ApiStep(name="A", method="GET", path="/a", middleware=cors)


def test_drf_policies_must_be_lists_of_classes():
    """permission/authentication/throttle classes given as an instance or a bare class fail."""
    with pytest.raises(StepConfigError, match=r"the class itself, not an instance"):
        ApiStep(name="A", method="GET", path="/a", permission_classes=[permissions.AllowAny()])
    with pytest.raises(StepConfigError, match=r"throttle_classes must be a list of classes"):
        ApiStep(name="A", method="GET", path="/a", throttle_classes=throttling.AnonRateThrottle)


@pytest.mark.parametrize(
    "workflow, fault",
    [
        ({"API_MIDDLEWARE": [f"{HERE}.missing"]}, "cannot be imported"),
        ({"API_MIDDLEWARE": [f"{HERE}.CALLS"]}, "middleware entries are functions"),
        ({"API_MIDDLEWARE": f"{HERE}.cors"}, "must be a list of dotted paths"),
        ({"FLOW_MIDDLEWARE": [f"{HERE}.cors"]}, "maps flow names to lists"),
        ({"FLOW_MIDDLEWARE": {"f": [f"{HERE}.handler"]}}, "cannot be called as mw"),
    ],
)
def test_bad_middleware_settings_are_check_error_e005(settings, workflow, fault):
    """A middleware setting that cannot work is reported by manage.py check as E005."""
    settings.WORKFLOW = workflow
    errors = [m for m in check_steps() if m.id == "workflow.E005"]
    assert len(errors) == 1
    assert fault in errors[0].msg


# DRF policies -------------------------------------------------------------------------


class RefuseAll(permissions.BasePermission):
    message = "Closed for inventory."

    def has_permission(self, request, view):
        return False


@pytest.mark.django_db
def test_a_permission_class_refusing_answers_403_before_the_handler(api, steps, serve, calls):
    """A step's permission_classes apply to its method only: refused is 403, handler unrun;
    the other method on the same path keeps the project default."""
    serve(
        add_api(steps, name="Closed", method="POST", permission_classes=[RefuseAll]),
        add_api(steps, name="Open", method="GET"),
    )
    refused = api.post("/hello", {}, format="json")
    assert (refused.status_code, refused.json()) == (403, {"detail": "Closed for inventory."})
    assert calls == []
    assert api.get("/hello").status_code == 200
    assert calls == ["handler"]


class TwoPerMinute(throttling.SimpleRateThrottle):
    rate = "2/min"

    def get_cache_key(self, request, view):
        return "test-middleware-two-per-minute"


@pytest.fixture
def clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_a_throttle_class_answers_429_once_its_rate_is_used(api, steps, serve, clean_cache, calls):
    """With throttle_classes, requests past the rate get 429 with Retry-After."""
    serve(add_api(steps, throttle_classes=[TwoPerMinute]))
    assert [api.get("/hello").status_code for _ in range(2)] == [200, 200]
    throttled = api.get("/hello")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert calls == ["handler", "handler"]


class KeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        key = request.headers.get("X-Key")
        if key is None:
            return None
        if key != "k1":
            raise exceptions.AuthenticationFailed("Unknown key.")
        return (types.SimpleNamespace(username="ann", is_authenticated=True), key)

    def authenticate_header(self, request):
        return "Key"


@pytest.mark.django_db
def test_authentication_classes_set_request_user_or_answer_401(api, steps, serve):
    """A step's authentication_classes authenticate the request; its user reaches the
    handler as request.user; without credentials IsAuthenticated answers 401."""

    def whoami(request, ctx):
        return {"status": 200, "body": {"user": request.user.username}}

    serve(
        add_api(
            steps,
            fn=whoami,
            authentication_classes=[KeyAuthentication],
            permission_classes=[permissions.IsAuthenticated],
        )
    )
    assert api.get("/hello", HTTP_X_KEY="k1").json() == {"user": "ann"}
    missing = api.get("/hello")
    assert (missing.status_code, missing["WWW-Authenticate"]) == (401, "Key")
    assert api.get("/hello", HTTP_X_KEY="nope").status_code == 401
