"""The tutorial's user-registration flow, run inline end to end with a FlowTester:
POST /users/register, then every delivery it causes, then GET /users/:userId/status."""

import json
import re
from unittest.mock import ANY

import pytest

from users.services import ACCOUNT_SETUP_SECONDS, WELCOME_EMAIL_SECONDS
from workflow.registry import registry

pytestmark = pytest.mark.store  # the store's path: run on PostgreSQL too

PASSWORD = "securepass123"
ALICE = {"name": "Alice Johnson", "email": "alice@example.com", "password": PASSWORD}
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def alice(flow):
    """Alice registered, and the flow run until quiet; her response body."""
    response = flow.post("/users/register", ALICE)
    assert response.status_code == 201, response.content
    return response.json()


def test_registration_emits_user_registered_and_both_subscribers_run(flow, alice):
    """user.registered carries the new user; SendWelcomeEmail and SetupUserAccount both
    succeed (as does any subscriber added since), and the email.sent they lead to is
    logged by LogNotification; each of the tutorial's topics is emitted once."""
    user_id = alice["userId"]
    new_user = {"userId": user_id, "name": "Alice Johnson", "email": "alice@example.com"}
    flow.assert_emitted("user.registered", new_user, count=1)
    subscribers = [step.name for step in registry.subscribers("user.registered")]
    assert {"SendWelcomeEmail", "SetupUserAccount"} <= set(subscribers)
    for step in [*subscribers, "LogNotification"]:
        flow.assert_ran(step)
    [sent] = flow.assert_emitted(
        "email.sent",
        {"userId": user_id, "email": "alice@example.com", "type": "welcome", "sentAt": ANY},
        count=1,
    )
    assert ISO_Z.match(sent["sentAt"])
    flow.assert_emitted("account.setup.completed", count=1)


def test_every_event_of_the_flow_is_in_the_requests_trace(flow):
    response = flow.post("/users/register", ALICE)
    assert {event.trace_id for event in flow.events()} == {response["X-Trace-Id"]}


def test_the_user_goes_from_pending_to_active(flow, alice):
    """Pending in the 201; active, with email sent and account set up, once the flow ran."""
    assert alice["status"] == "pending"
    status = flow.get(f"/users/{alice['userId']}/status")
    assert status.status_code == 200
    assert status.json() == {**alice, "status": "active", "emailSent": True, "accountSetup": True}


def test_the_flow_leaves_the_tutorials_state(flow, alice):
    """users, emails, user-settings, user-profiles, notification-logs, notification-counts."""
    user_id = alice["userId"]
    assert flow.state.get("users", user_id) == {**alice, "status": "active", "updatedAt": ANY}
    email = flow.state.get("emails", f"welcome-{user_id}")
    assert (email["type"], email["subject"]) == ("welcome", "Welcome to Our Platform!")
    assert flow.state.get("user-settings", user_id)["theme"] == "light"
    assert flow.state.get("user-profiles", user_id)["name"] == "Alice Johnson"
    [log] = flow.state.get_group("notification-logs").values()
    assert (log["userId"], log["type"]) == (user_id, "welcome")
    assert flow.state.get("notification-counts", user_id)["count"] == 1


def test_each_step_logs_the_tutorials_lines(flow, alice):
    user_id = alice["userId"]
    flow.assert_logged("Registering new user", step="RegisterUser", email="alice@example.com")
    for step, message in [
        ("SendWelcomeEmail", "Sending welcome email"),
        ("SendWelcomeEmail", "Email sent successfully"),
        ("SetupUserAccount", "User account setup completed"),
        ("LogNotification", "Notification logged successfully"),
    ]:
        flow.assert_logged(message, step=step, userId=user_id)


def test_the_simulated_waits_are_the_tutorials(flow, alice):
    """The email takes 1.0 s and the setup 0.8 s (skipped here, but asked for)."""
    assert sorted(flow.slept) == sorted([WELCOME_EMAIL_SECONDS, ACCOUNT_SETUP_SECONDS])


def test_a_second_registration_with_the_same_email_runs_nothing_more(flow, alice):
    response = flow.post("/users/register", {**ALICE, "email": "ALICE@example.com"})
    assert response.status_code == 409
    assert flow.emitted("user.registered") == [
        {"userId": alice["userId"], "name": "Alice Johnson", "email": "alice@example.com"}
    ]
    assert len(flow.deliveries("SendWelcomeEmail")) == 1


def test_a_bad_registration_emits_nothing(flow):
    response = flow.post("/users/register", {**ALICE, "email": "not-an-email"})
    assert response.status_code == 400
    assert flow.topics == []
    assert flow.deliveries() == []


def test_the_password_is_in_no_event_state_or_log_line(flow, alice):
    for event in flow.events():
        assert PASSWORD not in json.dumps(event.data)
    for group in ("users", "emails", "user-profiles", "notification-logs"):
        assert PASSWORD not in json.dumps(flow.state.get_group(group))
    assert flow.logs()  # lines were captured
    for line in flow.logs():
        assert PASSWORD not in line.message + json.dumps(line.fields)
