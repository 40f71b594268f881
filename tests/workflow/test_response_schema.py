"""An API step's response_schema is enforced: a body that breaks it fails the call in
development and tests ("raise"), and is logged with its trace in production ("log")."""

import decimal
import json
import types
import uuid

import pytest
from django.urls import path
from rest_framework import serializers
from rest_framework.test import APIClient

import workflow.urls  # noqa: F401  (routes are built from the real registry, before any swap)
from workflow.models import LogEntry, Run, StateEntry
from workflow.response_schema import MESSAGE
from workflow.steps import ApiStep
from workflow.views import view_for

pytestmark = pytest.mark.django_db


class ItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


@pytest.fixture
def serve(steps, settings):
    """``serve(schema)``: GET /item is a step ``Item`` whose response_schema is {200:
    schema}, which stores a state entry and answers 200 with the body given; returns
    ``answer(body)``, the response to a call answering ``body``."""

    def serve(schema=ItemSerializer):
        sent = {}

        def handler(request, ctx):
            ctx.state.set("items", "last", {"seen": True})
            return {"status": 200, "body": sent["body"]}

        config = ApiStep(name="Item", method="GET", path="/item", response_schema={200: schema})
        step = steps.add(config, handler, "", "item_step.py")
        urlconf = types.ModuleType("response_schema_test_urlconf")
        urlconf.urlpatterns = [path(step.config.route, view_for({"GET": step}))]
        settings.ROOT_URLCONF = urlconf

        def answer(body):
            sent["body"] = body
            return APIClient().get("/item")

        return answer

    return serve


@pytest.fixture
def answer(serve):
    return serve()


def mode(settings, value):
    settings.WORKFLOW = {**settings.WORKFLOW, "RESPONSE_SCHEMA_ERRORS": value}


def test_in_tests_a_body_off_its_schema_answers_500_naming_step_status_and_field(answer, settings):
    """Under pytest (DEBUG off, the setting unset), a body whose ``id`` is the string
    "1" fails the call: 500, naming the step, the status, the schema and the field; the
    run failed with that error and the handler's writes rolled back."""
    assert settings.DEBUG is False
    assert "RESPONSE_SCHEMA_ERRORS" not in settings.WORKFLOW
    response = answer({"id": "1", "name": "pen"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error.startswith(
        "API step Item answered 200 with a body that breaks its response_schema[200] "
        '(ItemSerializer): {"id": ["A valid integer is required."]}'
    )
    assert "item_step.py" in error
    assert response.json()["traceId"] == response["X-Trace-Id"]
    run = Run.objects.get(trace_id=response["X-Trace-Id"])
    assert run.status == Run.Status.FAILED
    assert run.error == f"ResponseSchemaError: {error}"
    assert not StateEntry.objects.filter(group="items").exists()


@pytest.mark.django_db(transaction=True)  # its log lines are stored once no transaction is open
@pytest.mark.parametrize(
    "debug, value, raised", [(True, None, True), (False, None, False), (True, "log", False)]
)
def test_the_mode_comes_from_the_setting_else_from_debug(answer, settings, debug, value, raised):
    """``RESPONSE_SCHEMA_ERRORS`` None follows DEBUG (raise with it on, else log); "log"
    logs even with DEBUG on."""
    settings.DEBUG = debug
    mode(settings, value)
    response = answer({"id": 1})  # name missing
    assert response.status_code == (500 if raised else 200)
    assert LogEntry.objects.filter(message=MESSAGE).count() == (0 if raised else 1)


@pytest.mark.django_db(transaction=True)  # its log lines are stored once no transaction is open
def test_in_production_the_body_goes_out_and_a_warning_is_stored_with_the_trace(answer, settings):
    """In "log" mode the response goes out unchanged and the handler's writes commit;
    the step's warning, with the status, the schema and the fields, is stored with the
    call's trace (the workbench's logs and traces show it; the admin counts it)."""
    mode(settings, "log")
    body = {"id": "1", "name": ["pen"]}
    response = answer(body)
    assert (response.status_code, response.json()) == (200, body)
    trace_id = response["X-Trace-Id"]
    (line,) = LogEntry.objects.filter(message=MESSAGE)
    assert (line.level, line.step_name, line.trace_id) == ("warn", "Item", trace_id)
    assert line.fields == {
        "status": 200,
        "schema": "ItemSerializer",
        "errors": {"id": ["A valid integer is required."], "name": ["Not a valid string."]},
    }
    assert Run.objects.get(trace_id=trace_id).status == Run.Status.SUCCEEDED
    assert StateEntry.objects.filter(group="items").exists()


class Priced(serializers.Serializer):
    id = serializers.UUIDField()
    price = serializers.DecimalField(max_digits=6, decimal_places=2)


@pytest.mark.django_db(transaction=True)  # its log lines are stored once no transaction is open
def test_the_body_is_checked_as_the_client_reads_it(serve, settings):
    """The body is checked once rendered to JSON: a UUID object is sent as a string and
    passes; a Decimal object is sent as a number, not the string the schema documents,
    and breaks it."""
    mode(settings, "log")
    answer, key = serve(Priced), uuid.UUID(int=1)
    assert answer({"id": key, "price": "1.50"}).status_code == 200
    assert not LogEntry.objects.filter(message=MESSAGE).exists()
    response = answer({"id": key, "price": decimal.Decimal("1.50")})
    assert json.loads(response.content)["price"] == 1.5
    (line,) = LogEntry.objects.filter(message=MESSAGE)
    assert list(line.fields["errors"]) == ["price"]


def test_many_true_is_named_in_the_message(serve):
    """A ``Foo(many=True)`` schema is named so in the error."""
    answer = serve(ItemSerializer(many=True))
    response = answer([{"id": 1, "name": "a"}, {"id": "2", "name": "b"}])
    assert response.status_code == 500
    assert "response_schema[200] (ItemSerializer(many=True)): " in response.json()["error"]
