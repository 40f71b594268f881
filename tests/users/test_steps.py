"""Each step of the users app alone: its handler called with a mock context
(``workflow.testing.call_handler``): in-memory state, emits and log lines recorded."""

import pytest
from rest_framework.exceptions import ValidationError

from users.models import Account
from workflow.runner import InvalidInput
from workflow.testing import call_handler

pytestmark = pytest.mark.store  # the store's path: run on PostgreSQL too

ANN = {"userId": "user-1", "name": "Ann Lee", "email": "ann@example.com"}
PENDING = {**ANN, "status": "pending", "createdAt": "2024-01-28T10:30:00.000Z"}


@pytest.mark.django_db
def test_register_user_answers_201_stores_the_pending_user_and_emits():
    body = {"name": "Ann Lee", "email": "ann@example.com", "password": "securepass123"}
    result = call_handler("RegisterUser", {"body": body})
    assert result.status == 201
    user = result.body
    assert (user["status"], user["email"]) == ("pending", "ann@example.com")
    assert result.state == {"users": {user["userId"]: user}}
    assert result.emitted("user.registered") == [
        {"userId": user["userId"], "name": "Ann Lee", "email": "ann@example.com"}
    ]
    assert Account.objects.get(user_id=user["userId"]).email == "ann@example.com"
    assert result.logged("User registered successfully", userId=user["userId"])


@pytest.mark.django_db
def test_register_user_answers_409_for_a_known_email_and_emits_nothing():
    Account.objects.create(user_id="user-0", email="ann@example.com", password="x")
    body = {"name": "Ann Lee", "email": "Ann@Example.com", "password": "securepass123"}
    result = call_handler("RegisterUser", {"body": body})
    assert (result.status, result.body) == (409, {"error": "Email already registered"})
    assert result.topics == []
    assert result.logged("Email already registered", level="warn")


def test_register_user_body_is_checked_before_the_handler():
    with pytest.raises(ValidationError) as error:
        call_handler("RegisterUser", {"body": {"name": "A", "email": "x", "password": "1"}})
    assert set(error.value.detail) == {"name", "email", "password"}


def test_send_welcome_email_records_the_email_and_emits_email_sent():
    result = call_handler("SendWelcomeEmail", ANN, sleep=False)
    [sent] = result.emitted("email.sent")
    assert {k: sent[k] for k in ("userId", "email", "type")} == {
        "userId": "user-1",
        "email": "ann@example.com",
        "type": "welcome",
    }
    email = result.state["emails"]["welcome-user-1"]
    assert (email["subject"], email["sentAt"][:4]) == (
        "Welcome to Our Platform!",
        sent["sentAt"][:4],
    )
    assert [line.message for line in result.logs] == [
        "Sending welcome email",
        "Email sent successfully",
        "Welcome email workflow completed",
    ]


def test_send_welcome_email_refuses_an_event_without_the_user():
    with pytest.raises(InvalidInput, match="SendWelcomeEmail input did not match"):
        call_handler("SendWelcomeEmail", {"userId": "user-1"}, sleep=False)


def test_setup_account_activates_a_pending_user():
    result = call_handler(
        "SetupUserAccount", ANN, state={"users": {"user-1": PENDING}}, sleep=False
    )
    assert result.state["users"]["user-1"]["status"] == "active"
    assert result.state["user-settings"]["user-1"]["language"] == "en"
    assert result.state["user-profiles"]["user-1"]["name"] == "Ann Lee"
    [completed] = result.emitted("account.setup.completed")
    assert completed["settings"] == result.state["user-settings"]["user-1"]


def test_setup_account_of_an_unknown_user_creates_no_user():
    result = call_handler("SetupUserAccount", ANN, sleep=False)
    assert "users" not in result.state
    assert result.topics == ["account.setup.completed"]


def test_log_notification_stores_the_entry_and_counts_it():
    sent = {"userId": "user-1", "email": "ann@example.com", "type": "welcome", "sentAt": "t1"}
    counts = {"notification-counts": {"user-1": {"count": 2, "lastNotification": "t0"}}}
    result = call_handler("LogNotification", sent, state=counts)
    assert result.state["notification-counts"]["user-1"] == {"count": 3, "lastNotification": "t1"}
    [entry] = result.state["notification-logs"].values()
    assert (entry["userId"], entry["type"], entry["sentAt"]) == ("user-1", "welcome", "t1")
    assert result.topics == []


def test_get_user_status_shows_the_flags():
    state = {"users": {"user-1": PENDING}, "emails": {"welcome-user-1": {}}}
    result = call_handler("GetUserStatus", {"path_params": {"userId": "user-1"}}, state=state)
    assert result.status == 200
    assert result.body == {**PENDING, "emailSent": True, "accountSetup": False}


def test_get_user_status_of_an_unknown_user_is_404():
    result = call_handler("GetUserStatus", {"path_params": {"userId": "nobody"}})
    assert (result.status, result.body) == (404, {"error": "User not found"})
