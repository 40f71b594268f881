"""Recording an API call after its transaction: a database error then never reaches the
client; the record is stored again in the background, or logged whole."""

import json
import logging
import time
import types

import pytest
from django.db import OperationalError, connection
from django.urls import path
from rest_framework.test import APIClient

from workflow import recording, signals
from workflow.models import LogEntry, Run, StateEntry, Trace
from workflow.steps import ApiStep
from workflow.store import store_for
from workflow.views import view_for

pytestmark = [pytest.mark.store, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def backlog(monkeypatch):
    """This process's backlog, retrying every 50 ms, three times."""
    fast = recording.Backlog(delays=(0.05, 0.05, 0.05))
    monkeypatch.setattr(recording, "_backlog", fast)
    return fast


@pytest.fixture
def failing(monkeypatch):
    """``failing.times = n``: the store's next n recordings of an API call raise
    OperationalError, as on a database locked past the timeout; with ``failing.after``
    set, they store the call first (the error comes after the commit)."""
    store_class = type(store_for())
    real = store_class.record_api_run
    state = types.SimpleNamespace(times=0, after=False, calls=0)

    def record_api_run(self, run, trace, lines):
        state.calls += 1
        if state.times:
            state.times -= 1
            if state.after:
                real(self, run, trace, lines)
            raise OperationalError("database is locked")
        return real(self, run, trace, lines)

    monkeypatch.setattr(store_class, "record_api_run", record_api_run)
    return state


@pytest.fixture
def finished():
    """The runs announced by ``run_finished``, each with its id at that moment."""
    announced = []

    def receiver(sender, run, **kwargs):
        announced.append((run.trace_id, run.pk))

    signals.run_finished.connect(receiver)
    yield announced
    signals.run_finished.disconnect(receiver)


@pytest.fixture
def logs(caplog):
    """caplog, also receiving the non-propagating 'workflow' logger."""
    logger = logging.getLogger("workflow")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="workflow")
    yield caplog
    logger.removeHandler(caplog.handler)


def create_order(request, ctx):
    ctx.state.set("orders", "1", {"placed": True})
    ctx.logger.info("Order placed", orderId=1, password="s3cret-pass")
    return {"status": 201, "body": {"orderId": 1}}


@pytest.fixture
def orders(steps, settings):
    """POST /orders: writes state, logs a line, answers 201."""
    step = steps.add(ApiStep(name="CreateOrder", method="POST", path="/orders"), create_order)
    urlconf = types.ModuleType("recording_test_urlconf")
    urlconf.urlpatterns = [path("orders", view_for({"POST": step}))]
    settings.ROOT_URLCONF = urlconf
    return step


def wait_for(check, timeout=5):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)
    return found


def test_a_call_whose_recording_fails_answers_all_the_same_and_is_recorded_later(
    api, orders, backlog, failing, finished, logs
):
    """The handler's work committed, then storing its run fails twice: the client gets
    the step's 201 with its trace id; the backlog stores the run, its trace and its log
    line (linked to the run) on its second retry, then announces the run."""
    failing.times = 2
    response = api.post("/orders", {}, format="json")
    assert (response.status_code, response.json()) == (201, {"orderId": 1})
    trace_id = response["X-Trace-Id"]
    assert StateEntry.objects.get(group="orders", key="1").value == {"placed": True}
    assert "Could not record the run of API step CreateOrder" in logs.text
    run = wait_for(lambda: Run.objects.filter(trace_id=trace_id).first())
    assert (run.step_name, run.status, run.status_code) == ("CreateOrder", "succeeded", 201)
    assert Trace.objects.get(trace_id=trace_id).entry_step == "CreateOrder"
    line = LogEntry.objects.get(trace_id=trace_id)
    assert (line.message, line.run_id) == ("Order placed", run.pk)
    wait_for(lambda: finished)
    assert finished == [(trace_id, run.pk)]
    assert failing.calls == 3


def test_a_call_stored_before_its_error_is_not_stored_twice(api, orders, backlog, failing):
    """An error after the record committed: the backlog finds the run stored and
    writes nothing more."""
    failing.times, failing.after = 1, True
    response = api.post("/orders", {}, format="json")
    assert response.status_code == 201
    wait_for(lambda: not backlog.waiting)
    assert Run.objects.filter(trace_id=response["X-Trace-Id"]).count() == 1
    assert Trace.objects.filter(trace_id=response["X-Trace-Id"]).count() == 1
    assert failing.calls == 1


def test_a_call_never_recorded_is_logged_whole_with_its_secrets_redacted(
    api, orders, backlog, failing, logs
):
    """After its last retry, the call is logged at ERROR with the whole record: the
    run (step, trace id, status code), the trace and the log lines, whose fields are
    redacted as stored lines are."""
    failing.times = 99
    response = api.post("/orders", {}, format="json")
    assert response.status_code == 201
    wait_for(lambda: not backlog.waiting)
    [gave_up] = [r.getMessage() for r in logs.records if r.levelno == logging.ERROR]
    assert "Gave up recording the run of API step CreateOrder" in gave_up
    assert "after 4 attempts (OperationalError: database is locked)" in gave_up
    record = json.loads(gave_up.partition("the record: ")[2])
    assert record["run"]["traceId"] == response["X-Trace-Id"]
    assert (record["run"]["status"], record["run"]["statusCode"]) == ("succeeded", 201)
    assert record["trace"]["entryStep"] == "CreateOrder"
    assert [(line["message"], line["fields"]) for line in record["lines"]] == [
        ("Order placed", {"orderId": 1, "password": "[redacted]"})
    ]
    assert "s3cret-pass" not in logs.text
    assert Run.objects.count() == 0


def test_calls_still_waiting_at_exit_are_logged_whole(logs):
    """At the process's exit, each call the backlog still holds is logged whole."""
    held = recording.Backlog(delays=(60,))
    run = Run(step_name="CreateOrder", trace_id="a" * 32, status="succeeded", status_code=201)
    held.put(recording.ApiCall(run, Trace(trace_id="a" * 32, entry_step="CreateOrder")))
    held.give_up_all()
    [gave_up] = [r.getMessage() for r in logs.records if r.levelno == logging.ERROR]
    assert "(the process is exiting)" in gave_up and '"traceId": "' + "a" * 32 in gave_up


@pytest.mark.skipif(
    connection.vendor == "postgresql",
    reason="PostgreSQL stores a call in one statement, which sets no id when it fails",
)
def test_a_retry_never_overwrites_the_run_of_another_call(api, orders, monkeypatch):
    """The first attempt saved the run, then failed on its trace and rolled back; the
    id it had is taken by the next call's run. The retry stores the run as new: both
    runs are kept."""
    held = recording.Backlog(delays=(60,))  # retried by hand below
    monkeypatch.setattr(recording, "_backlog", held)
    real_save = Trace.save
    failures = [OperationalError("database is locked")]

    def save(trace, *args, **kwargs):
        if failures:
            raise failures.pop()
        return real_save(trace, *args, **kwargs)

    monkeypatch.setattr(Trace, "save", save)
    first = api.post("/orders", {}, format="json")
    [call] = held.waiting
    second = api.post("/orders", {}, format="json")
    assert Run.objects.get(trace_id=second["X-Trace-Id"]).pk == call.run.pk
    held.retry(call)
    assert not held.waiting
    assert sorted(Run.objects.values_list("trace_id", flat=True)) == sorted(
        [first["X-Trace-Id"], second["X-Trace-Id"]]
    )
