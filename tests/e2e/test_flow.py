"""The tutorial's flow over HTTP against runserver with its real django-q2 cluster."""

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from tests.e2e.conftest import register, state, wait_active

pytestmark = pytest.mark.e2e


def runs_of(stack, trace_id):
    rows = stack.query(
        "SELECT step_name, status, started_at, finished_at, worker FROM workflow_run "
        "WHERE trace_id = ? ORDER BY id",
        (trace_id,),
    )
    fields = ("step", "status", "started", "finished", "worker")
    return [dict(zip(fields, row, strict=True)) for row in rows]


def finished(runs):
    """The flow's four runs are recorded and none is still running."""
    return len(runs) >= 4 and all(run["status"] != "running" for run in runs)


def when(text):
    return datetime.fromisoformat(text)


def test_registration_answers_pending_before_any_handler_runs(stack):
    """POST /users/register answers 201 with a pending user before the handlers start."""
    started = time.monotonic()
    response = stack.post(
        "/users/register",
        {"name": "Alice Johnson", "email": "alice@example.com", "password": "securepass123"},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"userId", "name", "email", "status", "createdAt"}
    assert re.fullmatch(r"user-\d{13}-[0-9a-f]{8}", body["userId"])
    assert body["status"] == "pending"
    assert (body["name"], body["email"]) == ("Alice Johnson", "alice@example.com")
    assert elapsed < 0.8, "the response waited for a handler (SetupUserAccount takes 0.8 s)"
    finished = stack.query(
        "SELECT COUNT(*) FROM workflow_run WHERE trace_id = ? AND step_name != 'RegisterUser' "
        "AND status = 'succeeded'",
        (response.headers["X-Trace-Id"],),
    )
    assert finished == [(0,)]


def test_user_becomes_active_with_both_flags_in_under_two_seconds(stack):
    """The status shows active, emailSent and accountSetup within 2 s of registering."""
    started = time.monotonic()
    user = register(stack)
    body = wait_active(stack, user["userId"], timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert body["userId"] == user["userId"] and body["createdAt"] == user["createdAt"]


def test_email_and_account_handlers_run_in_parallel_then_notification_is_logged(stack):
    """SendWelcomeEmail and SetupUserAccount overlap; LogNotification follows.

    They get a wake-up job each, but which worker process takes a job is django-q2's
    choice (a worker that has handed its job to a handler thread may take the second
    too), so they overlap on two workers or on two handler threads of one."""
    user = register(stack)
    wait_active(stack, user["userId"], timeout=5)
    trace = stack.query(
        "SELECT trace_id FROM workflow_event WHERE topic = 'user.registered' AND data LIKE ?",
        (f"%{user['userId']}%",),
    )[0][0]
    deadline = time.monotonic() + 5
    # The user is active before LogNotification (which email.sent starts) has finished.
    while not finished(runs := runs_of(stack, trace)) and time.monotonic() < deadline:
        time.sleep(0.05)
    by_step = {run["step"]: run for run in runs}
    assert set(by_step) == {
        "RegisterUser",
        "SendWelcomeEmail",
        "SetupUserAccount",
        "LogNotification",
    }
    assert [run["status"] for run in runs] == ["succeeded"] * 4, runs
    email, account = by_step["SendWelcomeEmail"], by_step["SetupUserAccount"]
    assert when(email["started"]) < when(account["finished"])
    assert when(account["started"]) < when(email["finished"])
    assert when(by_step["LogNotification"]["started"]) >= when(email["finished"])
    assert state(stack, "notification-counts", user["userId"])["count"] == 1
    logs = stack.query(
        "SELECT COUNT(*) FROM workflow_stateentry WHERE `group` = 'notification-logs' "
        "AND key LIKE ?",
        (f"{user['userId']}-welcome-%",),
    )
    assert logs == [(1,)]


def test_unknown_user_status_is_404(stack):
    """GET /users/<unknown>/status answers 404 with the tutorial's error."""
    response = stack.get("/users/user-0-00000000/status")
    assert response.status_code == 404
    assert response.json() == {"error": "User not found"}


def test_burst_of_200_registrations_all_reach_active_with_counts_of_one(stack):
    """200 registrations from 8 clients: every user active, one email, one notification each."""
    with ThreadPoolExecutor(8) as pool:
        users = list(pool.map(lambda n: register(stack, name=f"Burst {n}"), range(200)))
    ids = [user["userId"] for user in users]
    assert len(set(ids)) == 200
    for user_id in ids:
        wait_active(stack, user_id, timeout=90)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counted = stack.query(
            "SELECT COUNT(*) FROM workflow_stateentry WHERE `group` = 'notification-counts' "
            f"AND key IN ({','.join('?' * len(ids))})",
            ids,
        )[0][0]
        if counted == len(ids):
            break
        time.sleep(0.2)
    for user_id in ids:
        assert state(stack, "notification-counts", user_id)["count"] == 1
        assert state(stack, "emails", f"welcome-{user_id}")["userId"] == user_id
    placeholders = ",".join("?" * len(ids))
    per_step = stack.query(
        "SELECT r.step_name, COUNT(*) FROM workflow_run r JOIN workflow_delivery d "
        "ON r.delivery_id = d.id JOIN workflow_event e ON d.event_id = e.id "
        f"WHERE r.status = 'succeeded' AND json_extract(e.data, '$.userId') IN ({placeholders}) "
        "GROUP BY r.step_name",
        ids,
    )
    assert dict(per_step) == {
        "SendWelcomeEmail": 200,
        "SetupUserAccount": 200,
        "LogNotification": 200,
    }
    assert stack.query("SELECT COUNT(*) FROM workflow_delivery WHERE status = 'dead'") == [(0,)]


def test_bad_input_over_http_is_rejected_and_creates_nothing(stack):
    """Through daphne: malformed JSON 400, 1.1 MB body 413, bad fields 400; no user, no event."""
    events_before = stack.query("SELECT COUNT(*) FROM workflow_event")[0][0]
    accounts_before = stack.query("SELECT COUNT(*) FROM users_account")[0][0]
    malformed = stack.post(
        "/users/register", data=b'{"name": "Al', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    huge = {"name": "x" * 1_100_000, "email": "big@example.com", "password": "securepass123"}
    assert stack.post("/users/register", huge).status_code == 413
    bad = stack.post("/users/register", {"name": "A", "email": "a", "password": "p"})
    assert bad.status_code == 400 and set(bad.json()) == {"name", "email", "password"}
    assert stack.query("SELECT COUNT(*) FROM workflow_event")[0][0] == events_before
    assert stack.query("SELECT COUNT(*) FROM users_account")[0][0] == accounts_before
