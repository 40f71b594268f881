"""API steps honour an ``Idempotency-Key`` header: a repeat gets the stored response."""

import json
import types
from datetime import timedelta

import pytest
from django.urls import path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIClient

import workflow.urls  # noqa: F401  (routes are built from the real registry, before any swap)
from users.models import Account
from workflow import idempotency
from workflow.models import Event, IdempotentResponse, Run, StateEntry
from workflow.steps import ApiStep, EventStep
from workflow.views import view_for

KEY = "order-7f3a9c"
ORDER = {"item": "book", "quantity": 2}
PASSWORD = "Tr0ub4dor&3-horse-battery"
USER = {"name": "John Doe", "email": "john@example.com", "password": PASSWORD}


class OrderSerializer(serializers.Serializer):
    item = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1)


def noop_handler(input, ctx):
    return None


@pytest.fixture
def orders(steps, settings):
    """Serve POST /orders: writes state, emits order.placed, answers 201 with a new id.

    ``orders.count`` counts handler runs; ``orders.fail`` makes the next run fail:
    "raise" raises, "503" answers 503.
    """
    calls = types.SimpleNamespace(count=0, fail=None)

    def place_order(request, ctx):
        calls.count += 1
        fail, calls.fail = calls.fail, None
        if fail == "raise":
            raise RuntimeError("payment service down")
        if fail == "503":
            ctx.emit("order.placed", {"orderId": calls.count})
            return {"status": 503, "body": {"error": "Try again later"}}
        order_id = calls.count
        ctx.state.set("orders", str(order_id), request.body)
        ctx.emit("order.placed", {"orderId": order_id})
        return {"status": 201, "body": {"orderId": order_id}, "headers": {"Location": "/o"}}

    config = ApiStep(
        name="PlaceOrder",
        method="POST",
        path="/orders",
        emits=["order.placed"],
        body_schema=OrderSerializer,
    )
    step = steps.add(config, place_order, "", "orders_step.py")
    steps.add(EventStep(name="ShipOrder", subscribes=["order.placed"]), noop_handler)
    urlconf = types.ModuleType("idempotency_test_urlconf")
    urlconf.urlpatterns = [path(step.config.route, view_for({"POST": step}))]
    settings.ROOT_URLCONF = urlconf
    return calls


def post(api, body=ORDER, key=KEY, url="/orders"):
    headers = {} if key is None else {"Idempotency-Key": key}
    return api.post(url, body, format="json", headers=headers)


def counts():
    """(events, state entries, runs, stored responses)."""
    return (
        Event.objects.count(),
        StateEntry.objects.count(),
        Run.objects.count(),
        IdempotentResponse.objects.count(),
    )


@pytest.mark.django_db
def test_repeat_replays_the_first_response_and_runs_nothing(api, orders):
    """A repeat gets the first status, body, headers and trace id, marked replayed;
    the handler does not run, so nothing is emitted, written or recorded."""
    first = post(api)
    assert (first.status_code, first.json()) == (201, {"orderId": 1})
    assert "Idempotent-Replayed" not in first
    assert counts() == (1, 1, 1, 1)

    again = post(api)
    assert (again.status_code, again.json()) == (201, {"orderId": 1})
    assert again["Idempotent-Replayed"] == "true"
    assert again["X-Trace-Id"] == first["X-Trace-Id"]
    assert again["Location"] == "/o"
    assert orders.count == 1
    assert counts() == (1, 1, 1, 1)


@pytest.mark.django_db
def test_body_with_keys_in_another_order_is_the_same_request(api, orders):
    """The fingerprint is over canonical JSON: reordered keys are a repeat, not a 422."""
    post(api)
    raw = json.dumps(dict(reversed(ORDER.items())), indent=2)
    again = api.generic(
        "POST", "/orders", raw, content_type="application/json", headers={"Idempotency-Key": KEY}
    )
    assert (again.status_code, again["Idempotent-Replayed"]) == (201, "true")
    assert orders.count == 1


@pytest.mark.django_db
def test_same_key_with_another_body_answers_422_and_runs_nothing(api, orders):
    """A key reused with a different body is refused with 422; nothing runs or is
    emitted. The refusal is traced on its own: a trace id of its own, a refused run."""
    first = post(api)
    response = post(api, {**ORDER, "quantity": 3})
    assert response.status_code == 422
    assert set(response.json()) == {"error"}
    assert "different request" in response.json()["error"]
    assert "Idempotent-Replayed" not in response
    assert orders.count == 1
    assert counts() == (1, 1, 2, 1)
    assert response["X-Trace-Id"] != first["X-Trace-Id"]
    refused = Run.objects.get(trace_id=response["X-Trace-Id"])
    assert (refused.status, refused.status_code) == (Run.Status.REFUSED, 422)


@pytest.mark.django_db
def test_without_the_header_every_request_runs(api, orders):
    """Without an Idempotency-Key each request runs the handler and nothing is stored."""
    first, second = post(api, key=None), post(api, key=None)
    assert [first.json(), second.json()] == [{"orderId": 1}, {"orderId": 2}]
    assert first["X-Trace-Id"] != second["X-Trace-Id"]
    assert "Idempotent-Replayed" not in second
    assert orders.count == 2
    assert counts() == (2, 2, 2, 0)


@pytest.mark.django_db
def test_a_key_belongs_to_one_step(api, orders, steps, settings):
    """The same key sent to another step is a first request there."""
    other = steps.add(
        ApiStep(name="Ping", method="POST", path="/ping"),
        lambda request, ctx: {"status": 200, "body": {"pong": True}},
    )
    settings.ROOT_URLCONF.urlpatterns.append(path("ping", view_for({"POST": other})))
    post(api)
    response = post(api, url="/ping")
    assert (response.status_code, response.json()) == (200, {"pong": True})
    assert "Idempotent-Replayed" not in response
    assert IdempotentResponse.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("fail, status", [("raise", 500), ("503", 503)])
def test_server_error_stores_nothing_and_a_retry_runs(api, orders, fail, status):
    """A handler that raises (500) or answers 5xx stores nothing; a retry with the same
    key runs the step."""
    orders.fail = fail
    failed = post(api)
    assert failed.status_code == status
    assert IdempotentResponse.objects.count() == 0

    retry = post(api)
    assert (retry.status_code, retry.json()) == (201, {"orderId": 2})
    assert "Idempotent-Replayed" not in retry
    assert orders.count == 2
    assert IdempotentResponse.objects.get().trace_id == retry["X-Trace-Id"]


@pytest.mark.django_db
def test_invalid_body_stores_nothing_and_a_corrected_retry_runs(api, orders):
    """A 400 from validation happens before the handler: nothing stored, the key stays free."""
    assert post(api, {"item": "book"}).status_code == 400
    assert IdempotentResponse.objects.count() == 0
    assert post(api, {"item": "book"}).status_code == 400
    assert orders.count == 0

    assert post(api).status_code == 201
    assert post(api)["Idempotent-Replayed"] == "true"
    assert orders.count == 1


@pytest.mark.django_db
def test_record_older_than_the_ttl_is_replaced(api, orders, settings):
    """Past WORKFLOW['IDEMPOTENCY_TTL'] a stored response is ignored; the step runs again
    (even with another body) and its response replaces the old record."""
    settings.WORKFLOW = {"IDEMPOTENCY_TTL": 60}
    first = post(api)
    IdempotentResponse.objects.update(created_at=timezone.now() - timedelta(seconds=61))

    second = post(api, {**ORDER, "quantity": 5})
    assert (second.status_code, second.json()) == (201, {"orderId": 2})
    assert "Idempotent-Replayed" not in second
    record = IdempotentResponse.objects.get()
    assert (record.trace_id, record.body) == (second["X-Trace-Id"], {"orderId": 2})
    assert record.trace_id != first["X-Trace-Id"]
    assert Event.objects.count() == 2


@pytest.mark.django_db
def test_record_within_the_default_ttl_is_replayed(api, orders):
    """The default TTL is a day: a 23-hour-old response is still replayed."""
    post(api)
    IdempotentResponse.objects.update(created_at=timezone.now() - timedelta(hours=23))
    assert post(api)["Idempotent-Replayed"] == "true"
    assert orders.count == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["k" * 256, "", "tab\there", "new\x01line", "caf\xe9"])
def test_bad_key_answers_400(api, orders, key):
    """A key that is empty, over 255 characters or not printable ASCII is a 400 naming
    the header; nothing runs (the refusal is recorded as a refused run)."""
    response = post(api, key=key)
    assert response.status_code == 400
    assert list(response.json()) == ["Idempotency-Key"]
    assert orders.count == 0
    assert counts() == (0, 0, 1, 0)
    assert Run.objects.get().status == Run.Status.REFUSED


@pytest.mark.django_db
def test_key_of_255_printable_characters_is_accepted(api, orders):
    """255 characters, spaces and punctuation included, is a valid key."""
    key = ("a b-c_d:e/" * 26)[:255]
    assert post(api, key=key).status_code == 201
    assert IdempotentResponse.objects.get().key == key


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_commit_only_the_winner(api, orders, monkeypatch):
    """Of two first requests with a key, the one whose record insert loses rolls back all
    it did and answers with the winner's stored response."""
    real_stored = idempotency.Claim.stored
    race = {}

    def stored(claim):
        if race:
            return real_stored(claim)
        # The loser looked the key up and found nothing; then the winner ran and committed.
        race["winner"] = None
        race["winner"] = post(APIClient())
        return None

    monkeypatch.setattr(idempotency.Claim, "stored", stored)
    loser = post(api)
    winner = race["winner"]
    assert orders.count == 2  # both handlers ran
    assert (winner.status_code, winner.json()) == (201, {"orderId": 1})
    assert (loser.status_code, loser.json()) == (201, {"orderId": 1})
    assert loser["Idempotent-Replayed"] == "true"
    assert loser["X-Trace-Id"] == winner["X-Trace-Id"]
    assert [e.data for e in Event.objects.all()] == [{"orderId": 1}]
    assert list(StateEntry.objects.values_list("key", flat=True)) == ["1"]
    lost = Run.objects.exclude(trace_id=winner["X-Trace-Id"]).get()
    assert lost.status == Run.Status.FAILED
    assert "concurrent request" in lost.error


@pytest.mark.django_db
def test_race_loser_that_cannot_read_the_winner_answers_409(api, steps, settings):
    """If the record insert conflicts but no winner's record can be read, the request
    answers 409 and its writes and emits are rolled back."""

    def place_order(request, ctx):
        ctx.emit("order.placed", {"orderId": 1})
        ctx.state.set("orders", "1", {})
        IdempotentResponse.objects.create(  # a competing record, gone with the rollback
            step_name="PlaceOrder", key=KEY, fingerprint="x", status_code=201, trace_id="t"
        )
        return {"status": 201, "body": {"orderId": 1}}

    config = ApiStep(name="PlaceOrder", method="POST", path="/orders", emits=["order.placed"])
    step = steps.add(config, place_order)
    urlconf = types.ModuleType("idempotency_test_urlconf")
    urlconf.urlpatterns = [path("orders", view_for({"POST": step}))]
    settings.ROOT_URLCONF = urlconf

    response = post(api)
    assert response.status_code == 409
    assert set(response.json()) == {"error"}
    assert (Event.objects.count(), StateEntry.objects.count()) == (0, 0)
    assert IdempotentResponse.objects.count() == 0
    assert Run.objects.get().status == Run.Status.FAILED


# The example: POST /users/register ------------------------------------------------------


@pytest.mark.django_db
def test_register_twice_with_one_key_creates_one_account(api):
    """Registering twice with the same key answers the same userId and makes one Account."""
    first = post(api, USER, url="/users/register")
    again = post(api, USER, url="/users/register")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Account.objects.count() == 1
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_stored_record_never_holds_the_password(api):
    """The fingerprint is a sha256 HMAC, not the body: the password is nowhere in the record."""
    post(api, USER, url="/users/register")
    record = IdempotentResponse.objects.get()
    assert len(record.fingerprint) == 64
    int(record.fingerprint, 16)
    stored = json.dumps([record.fingerprint, record.body, record.headers, record.key])
    assert PASSWORD not in stored
    assert "Tr0ub4dor" not in stored
