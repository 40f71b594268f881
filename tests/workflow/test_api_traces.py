"""Every call of an API step is traced, refused ones included: a trace id in
``X-Trace-Id``, a trace, and a run with the status code it answered (refused for a 4xx)."""

import re

import pytest
from rest_framework import authentication, permissions, serializers, throttling

from workflow.models import Run, Trace
from workflow.steps import ApiStep

pytestmark = pytest.mark.django_db
SECRET = "hunter2-but-longer"


class SignUpSerializer(serializers.Serializer):
    name = serializers.CharField(min_length=2)
    password = serializers.ChoiceField(choices=["only-this-one"])  # its message echoes the value


@pytest.fixture
def handled():
    """The requests the handlers below got."""
    HANDLED.clear()
    yield HANDLED
    HANDLED.clear()


HANDLED = []


def answer(status):
    def handler(request, ctx):
        HANDLED.append(request)
        return {"status": status, "body": {"error": "no"} if status >= 400 else {}}

    return handler


def traced_run(response):
    """The one run of the trace ``response`` names, after checking its trace."""
    trace_id = response["X-Trace-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    trace = Trace.objects.get(trace_id=trace_id)
    run = Run.objects.get(trace_id=trace_id)
    assert (trace.entry_step, trace.started_at) == (run.step_name, run.started_at)
    assert run.finished_at >= run.started_at
    return run


def test_a_body_refused_with_400_is_traced_with_its_messages_never_its_values(
    api, steps, serve, handled
):
    """A body its schema refuses: 400 with a trace id, and a refused run of the step
    with status 400 and the answer's messages as its error; a field named like a secret
    is left out of the error, and the body's values are stored nowhere."""
    config = ApiStep(name="SignUp", method="POST", path="/sign-up", body_schema=SignUpSerializer)
    serve(steps.add(config, answer(201)))
    response = api.post("/sign-up", {"name": "J", "password": SECRET}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"name", "password"}
    assert SECRET in response.json()["password"][0]  # the client sees its own value
    run = traced_run(response)
    assert (run.step_name, run.status, run.status_code) == ("SignUp", Run.Status.REFUSED, 400)
    assert run.error.startswith('400 Bad Request: {"name": ["Ensure this field has at least 2')
    assert '"password": "[redacted]"' in run.error
    assert SECRET not in run.error + run.traceback
    assert handled == []


class Never(throttling.BaseThrottle):
    def allow_request(self, request, view):
        return False


@pytest.mark.parametrize(
    "config, request_args, status",
    [
        (
            {
                "permission_classes": [permissions.IsAuthenticated],
                "authentication_classes": [authentication.BasicAuthentication],
            },
            {},
            401,
        ),
        ({"permission_classes": [permissions.IsAuthenticated]}, {}, 403),
        ({"throttle_classes": [Never]}, {}, 429),
        ({}, {"content_type": "application/x-www-form-urlencoded"}, 415),
        ({}, {"path": "/items/%00"}, 404),
        ({}, {"body": "x" * (1024 * 1024 + 1)}, 413),
        ({}, {"body": '{"name": '}, 400),
    ],
    ids=["401", "403", "429", "415", "404-nul", "413", "400-json"],
)
def test_a_request_refused_before_its_handler_is_traced(
    api, steps, serve, handled, config, request_args, status
):
    """A request DRF or the view refuses before the handler runs (authentication,
    permission, throttle, media type, a NUL in the path, the body's size or JSON) is
    answered as before, with a trace id, a trace and a refused run with its status."""
    config = ApiStep(name="Items", method="POST", path="/items/:id", **config)
    serve(steps.add(config, answer(201)))
    response = api.generic(
        "POST",
        request_args.get("path", "/items/1"),
        request_args.get("body", "{}"),
        content_type=request_args.get("content_type", "application/json"),
    )
    assert response.status_code == status
    run = traced_run(response)
    assert (run.step_name, run.status, run.status_code) == ("Items", Run.Status.REFUSED, status)
    assert run.error.startswith(f"{status} ")
    assert handled == []


@pytest.mark.parametrize(
    "status, expected",
    [
        (201, Run.Status.SUCCEEDED),
        (302, Run.Status.SUCCEEDED),
        (404, Run.Status.REFUSED),
        (409, Run.Status.REFUSED),
        (422, Run.Status.REFUSED),
        (503, Run.Status.FAILED),
    ],
)
def test_the_handlers_own_answer_sets_its_runs_status_and_code(
    api, steps, serve, handled, status, expected
):
    """A handler's 4xx (a 404, a 409) is a refused run, not a success; a 5xx a failed
    one; the run keeps the status code."""
    serve(steps.add(ApiStep(name="Item", method="GET", path="/item"), answer(status)))
    response = api.get("/item")
    assert response.status_code == status
    run = traced_run(response)
    assert (run.status, run.status_code, run.error) == (expected, status, "")
    assert len(handled) == 1


def test_a_handler_that_raises_is_a_failed_run_answered_500(api, steps, serve):
    """A raising handler's run is failed with status code 500."""

    def broken(request, ctx):
        raise RuntimeError("down")

    serve(steps.add(ApiStep(name="Broken", method="GET", path="/broken"), broken))
    response = api.get("/broken")
    run = traced_run(response)
    assert (response.status_code, run.status, run.status_code) == (500, Run.Status.FAILED, 500)


def test_a_method_no_step_serves_is_not_a_call_of_a_step(api, steps, serve):
    """A 405 (and OPTIONS) on a step's path names no step: it is answered as DRF does,
    without a trace or a run."""
    serve(steps.add(ApiStep(name="Item", method="GET", path="/item"), answer(200)))
    response = api.delete("/item")
    assert response.status_code == 405
    assert "X-Trace-Id" not in response
    assert api.options("/item").status_code == 200
    assert (Run.objects.count(), Trace.objects.count()) == (0, 0)
