"""The example API (users/steps) over HTTP, and how an API step's failures are answered."""

import json
import logging
import re
import time
import types

import pytest
from django.contrib.auth.hashers import check_password
from django.db import OperationalError, connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import path
from django_q.models import OrmQ
from rest_framework.test import APIClient

import workflow.urls  # noqa: F401  (routes are built from the real registry, before any swap)
from tests.markers import postgresql_only
from users import serializers as user_serializers
from users.models import Account
from users.serializers import EMAIL_MESSAGE, NAME_MESSAGE, PASSWORD_MESSAGE
from workflow import idempotency, recording, views
from workflow.models import Delivery, Event, LogEntry, Run, StateEntry, Trace
from workflow.registry import registry
from workflow.steps import ApiStep, EventStep
from workflow.store import store_for
from workflow.views import view_for

pytestmark = pytest.mark.store  # the store's path: run on PostgreSQL too

PASSWORD = "Tr0ub4dor&3-horse-battery"
VALID = {"name": "John Doe", "email": "john@example.com", "password": PASSWORD}
USER_ID = re.compile(r"^user-\d+-[0-9a-f]{8}$")
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def logs(caplog):
    """caplog, also receiving the non-propagating 'workflow' and 'workflow.steps' loggers."""
    loggers = [logging.getLogger(name) for name in ("workflow", "workflow.steps")]
    for logger in loggers:
        logger.addHandler(caplog.handler)
        caplog.set_level(logging.DEBUG, logger=logger.name)
    yield caplog
    for logger in loggers:
        logger.removeHandler(caplog.handler)


@pytest.fixture
def serve(settings):
    """Serve the given registered API steps from a URLconf of their own."""

    def serve(*registered):
        urlconf = types.ModuleType("api_test_urlconf")
        urlconf.urlpatterns = [
            path(s.config.route, view_for({s.config.method: s})) for s in registered
        ]
        settings.ROOT_URLCONF = urlconf

    return serve


def register(api, **overrides):
    return api.post("/users/register", {**VALID, **overrides}, format="json")


def assert_nothing_created():
    assert Account.objects.count() == 0
    assert StateEntry.objects.count() == 0
    assert Event.objects.count() == 0


# POST /users/register --------------------------------------------------------------------


@pytest.mark.django_db
def test_register_answers_201_with_the_pending_user(api):
    """A valid registration answers 201 with the new pending user and a trace id."""
    response = register(api)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"userId", "name", "email", "status", "createdAt"}
    assert USER_ID.match(body["userId"])
    assert (body["name"], body["email"], body["status"]) == ("John Doe", VALID["email"], "pending")
    assert ISO_Z.match(body["createdAt"])
    assert PASSWORD not in response.content.decode()
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Trace-Id"])


@pytest.mark.django_db
def test_register_stores_a_password_hash_never_the_password(api):
    """The Account row holds an argon2 hash of the password, not the password."""
    user_id = register(api).json()["userId"]
    account = Account.objects.get(user_id=user_id)
    assert account.email == VALID["email"]
    assert account.password.startswith("argon2")
    assert account.password != PASSWORD
    assert check_password(PASSWORD, account.password)


@pytest.mark.django_db
def test_register_writes_state_and_emits_once_with_its_wake_up_jobs(api):
    """The user is in state 'users'; one user.registered event, with a delivery to each
    of its subscribers and the wake-up jobs of those (written with them: the ORM broker)."""
    response = register(api)
    user = response.json()
    assert StateEntry.objects.get(group="users", key=user["userId"]).value == user
    event = Event.objects.get()
    assert event.topic == "user.registered"
    assert event.data == {"userId": user["userId"], "name": "John Doe", "email": VALID["email"]}
    assert (event.trace_id, event.emitted_by) == (response["X-Trace-Id"], "RegisterUser")
    deliveries = Delivery.objects.filter(event=event)
    subscribers = sorted(step.name for step in registry.subscribers("user.registered"))
    assert {"SendWelcomeEmail", "SetupUserAccount"} <= set(subscribers)  # and any added since
    assert sorted(d.step_name for d in deliveries) == subscribers
    woken = sorted(pk for job in OrmQ.objects.all() for pk in job.args())
    assert woken == sorted(d.pk for d in deliveries)
    run = Run.objects.get(trace_id=response["X-Trace-Id"])
    assert (run.step_name, run.status) == ("RegisterUser", Run.Status.SUCCEEDED)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides, errors",
    [
        ({"name": "J"}, {"name": [NAME_MESSAGE]}),
        ({"email": "not-an-email"}, {"email": [EMAIL_MESSAGE]}),
        ({"password": "short"}, {"password": [PASSWORD_MESSAGE]}),
        (
            {"name": "J", "email": "nope", "password": "1234567"},
            {"name": [NAME_MESSAGE], "email": [EMAIL_MESSAGE], "password": [PASSWORD_MESSAGE]},
        ),
    ],
)
def test_bad_fields_answer_400_with_the_tutorial_messages(api, overrides, errors):
    """Each invalid field is named with its message; nothing is created."""
    response = register(api, **overrides)
    assert response.status_code == 400
    assert response.json() == errors
    assert_nothing_created()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides, errors",
    [
        ({"name": 12345}, {"name": ["Not a valid string."]}),
        ({"password": 12345678}, {"password": ["Not a valid string."]}),
        (
            {"name": 1.5, "email": 5},
            {"name": ["Not a valid string."], "email": [EMAIL_MESSAGE]},
        ),
    ],
)
def test_fields_of_another_json_type_answer_400(api, overrides, errors):
    """A number where the schema says string is refused, as the tutorial's zod schema
    and the OpenAPI document say, not taken as its text; nothing is created."""
    response = register(api, **overrides)
    assert response.status_code == 400
    assert response.json() == errors
    assert_nothing_created()


@pytest.mark.django_db
def test_email_longer_than_its_column_once_lower_cased_answers_400(api):
    """Found by tests/test_fuzz.py: "İ" lower-cases to two characters, so an address of
    254 characters or fewer can be too long for the (lower-cased) column; PostgreSQL
    would fail the insert with a 500. It is refused with the tutorial's message."""
    email = "\u0130" * 240 + "@example.com"  # 252 characters, 492 lower-cased
    response = register(api, email=email)
    assert response.status_code == 400
    assert response.json() == {"email": [EMAIL_MESSAGE]}
    assert_nothing_created()


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["name", "email", "password"])
def test_missing_field_answers_400(api, missing):
    """A missing field is a 400 naming that field; nothing is created."""
    body = {k: v for k, v in VALID.items() if k != missing}
    response = api.post("/users/register", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [missing]
    assert_nothing_created()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw", [b"", b"{}", b'{"name": "John", ', b"[1, 2]", json.dumps([VALID]).encode()]
)
def test_empty_malformed_or_list_body_answers_400(api, raw):
    """An empty body, bad JSON or a JSON list is a 400; nothing is created."""
    response = api.generic("POST", "/users/register", raw, content_type="application/json")
    assert response.status_code == 400
    assert_nothing_created()


@pytest.mark.django_db
def test_body_over_configured_limit_answers_413(api):
    """A body over WORKFLOW['MAX_BODY_SIZE'] is a 413; nothing is created."""
    with override_settings(WORKFLOW={"MAX_BODY_SIZE": 100}):
        response = register(api, name="J" * 120)
    assert response.status_code == 413
    assert_nothing_created()


@pytest.mark.django_db
def test_body_over_default_one_megabyte_answers_413(api):
    """With the default limit (1 MB) a 1.1 MB body is a 413; nothing is created."""
    response = register(api, name="J" * 1_100_000)
    assert response.status_code == 413
    assert_nothing_created()


@pytest.mark.django_db
def test_get_on_register_answers_405(api):
    """The register path serves POST only."""
    assert api.get("/users/register").status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("second_email", ["john@example.com", "JOHN@Example.COM"])
def test_duplicate_email_answers_409(api, second_email):
    """A known email (in any case) is a 409 and emits nothing more."""
    assert register(api).status_code == 201
    response = register(api, email=second_email, name="Johnny")
    assert response.status_code == 409
    assert response.json() == {"error": "Email already registered"}
    assert Account.objects.count() == 1
    assert StateEntry.objects.filter(group="users").count() == 1
    assert Event.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_password_never_reaches_logs_events_or_state(api, logs):
    """The plain password is in no log line, stored log, event, state value or run."""
    user_id = register(api).json()["userId"]
    register(api)  # 409
    register(api, email="bad")  # 400
    api.get(f"/users/{user_id}/status")
    entries = list(LogEntry.objects.all())
    assert entries and "Registering new user" in logs.text  # the logs were captured
    for entry in entries:
        assert PASSWORD not in entry.message
        assert PASSWORD not in json.dumps(entry.fields)
    for event in Event.objects.all():
        assert PASSWORD not in json.dumps(event.data)
    for state in StateEntry.objects.all():
        assert PASSWORD not in json.dumps(state.value)
    for run in Run.objects.all():
        assert PASSWORD not in run.error + run.traceback
    assert PASSWORD not in logs.text


# GET /users/:userId/status ---------------------------------------------------------------


@pytest.mark.django_db
def test_status_of_unknown_user_answers_404(api):
    """An unknown user id is a 404 with the tutorial's error."""
    response = api.get("/users/user-1-deadbeef/status")
    assert response.status_code == 404
    assert response.json() == {"error": "User not found"}


@pytest.mark.django_db
def test_status_of_registered_user_is_pending(api):
    """A fresh user is pending, with no email sent and no account set up yet."""
    user = register(api).json()
    response = api.get(f"/users/{user['userId']}/status")
    assert response.status_code == 200
    assert response.json() == {**user, "emailSent": False, "accountSetup": False}


# Failures of an API step -----------------------------------------------------------------


def noop_handler(input, ctx):
    return None


@pytest.mark.django_db(transaction=True)
def test_handler_error_answers_500_and_rolls_back_but_keeps_logs(api, steps, serve):
    """A raising handler: 500 with trace id, writes and emits undone, logs and run kept."""

    def place_order(request, ctx):
        ctx.state.set("orders", "1", {"placed": True})
        ctx.emit("order.placed", {"orderId": 1})
        ctx.logger.info("Placing order", orderId=1)
        raise RuntimeError("payment service down")

    config = ApiStep(name="PlaceOrder", method="POST", path="/orders", emits=["order.placed"])
    serve(steps.add(config, place_order, "", "orders_step.py"))
    steps.add(EventStep(name="ShipOrder", subscribes=["order.placed"]), noop_handler)

    response = api.post("/orders", {}, format="json")
    trace_id = response["X-Trace-Id"]
    assert response.status_code == 500
    assert response.json() == {"error": "Internal Server Error", "traceId": trace_id}
    assert StateEntry.objects.count() == 0
    assert (Event.objects.count(), Delivery.objects.count(), OrmQ.objects.count()) == (0, 0, 0)
    run = Run.objects.get()
    assert (run.step_name, run.status, run.trace_id) == ("PlaceOrder", "failed", trace_id)
    assert run.error == "RuntimeError: payment service down"
    assert "place_order" in run.traceback
    entry = LogEntry.objects.get()
    assert (entry.message, entry.fields, entry.run_id) == ("Placing order", {"orderId": 1}, run.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("result", ["ok", None, {"body": {}}, {"status": "200"}])
def test_handler_returning_a_non_response_answers_500(api, steps, serve, logs, result):
    """A result that is not {'status': int, ...} is a 500 whose reason is logged."""
    serve(steps.add(ApiStep(name="Odd", method="GET", path="/odd"), lambda request, ctx: result))
    response = api.get("/odd")
    assert response.status_code == 500
    expected = f"must return {{'status': <int>, 'body': ...}}, not {result!r}"
    assert expected in logs.text
    assert expected in Run.objects.get(step_name="Odd").error


@postgresql_only("SQLite records the run through the ORM")
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_run_its_trace_and_its_lines_are_one_statement(api):
    """After the handler's transaction, one statement stores the call's run, its trace
    and its two log lines, each line linked to the run."""
    with CaptureQueriesContext(connection) as queries:
        response = register(api)
    assert response.status_code == 201
    writes = [q["sql"] for q in queries if '"workflow_run"' in q["sql"]]
    assert len(writes) == 1
    assert '"workflow_trace"' in writes[0] and '"workflow_logentry"' in writes[0]
    trace_id = response["X-Trace-Id"]
    run = Run.objects.get(step_name="RegisterUser", trace_id=trace_id)
    assert (run.status, run.finished_at is not None) == (Run.Status.SUCCEEDED, True)
    assert Trace.objects.get(trace_id=trace_id).entry_step == "RegisterUser"
    lines = LogEntry.objects.filter(trace_id=trace_id).order_by("id")
    assert [(line.message, line.run_id) for line in lines] == [
        ("Registering new user", run.pk),
        ("User registered successfully", run.pk),
    ]


# After the commit; error pages ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_register_answers_201_when_recording_its_run_fails_after_the_commit(api, monkeypatch):
    """Storing the run fails once (a database locked past its timeout): the user was
    created and the client gets the 201 with its trace id, not a 500; the run and its
    trace are stored in the background."""
    monkeypatch.setattr(recording, "_backlog", recording.Backlog(delays=(0.05,)))
    store_class = type(store_for())
    real = store_class.record_api_run
    failures = [OperationalError("database is locked")]

    def record_api_run(self, run, trace, lines):
        if failures:
            raise failures.pop()
        return real(self, run, trace, lines)

    monkeypatch.setattr(store_class, "record_api_run", record_api_run)
    response = register(api)
    assert response.status_code == 201
    assert Account.objects.filter(user_id=response.json()["userId"]).exists()
    trace_id = response["X-Trace-Id"]
    deadline = time.monotonic() + 5
    while not Run.objects.filter(trace_id=trace_id).exists():
        assert time.monotonic() < deadline, "the run was not stored in the background"
        time.sleep(0.02)
    run = Run.objects.get(trace_id=trace_id)
    assert (run.step_name, run.status, run.status_code) == ("RegisterUser", "succeeded", 201)
    assert Trace.objects.filter(trace_id=trace_id, entry_step="RegisterUser").exists()


PLAIN_PASSWORD = "correct-horse-battery-staple"  # nothing in it that HTML escapes


@pytest.fixture
def error_page(client, settings):
    """A test client that gets Django's error page (DEBUG on) instead of the exception."""
    settings.DEBUG = True
    client.raise_request_exception = False
    return client


@pytest.mark.django_db
def test_an_error_page_shows_neither_the_password_nor_its_hash(error_page, monkeypatch):
    """In DEBUG, an error that escapes a registration after the password was hashed
    (here, recording the run, made to raise) shows Django's error page, with the
    request's variables (its body holds the hash) as stars: neither the hash nor the
    password is on the page."""
    hashes = []

    def make_password(password):
        hashes.append(real_make_password(password))
        return hashes[-1]

    def escaping(run, trace, ctx):
        raise RuntimeError("recording escaped")

    real_make_password = user_serializers.make_password
    monkeypatch.setattr(user_serializers, "make_password", make_password)
    monkeypatch.setattr(views, "record_run", escaping)
    body = {**VALID, "password": PLAIN_PASSWORD}
    response = error_page.post("/users/register", body, content_type="application/json")
    html = response.content.decode()
    assert response.status_code == 500
    assert "RuntimeError" in html and "recording escaped" in html  # Django's error page
    assert "api_request" in html and "********************" in html
    assert len(hashes) == 1 and hashes[0] not in html
    assert PLAIN_PASSWORD not in html


@pytest.mark.django_db
def test_an_error_page_hides_a_posted_form(error_page, monkeypatch):
    """A form body (which the step would refuse) shows on an error page as stars."""

    def broken(step, request):
        raise RuntimeError("idempotency store down")

    monkeypatch.setattr(idempotency, "claim", broken)
    response = error_page.post("/users/register", {"name": "Ann", "password": PLAIN_PASSWORD})
    html = response.content.decode()
    assert response.status_code == 500
    assert "idempotency store down" in html and "********************" in html
    assert PLAIN_PASSWORD not in html
