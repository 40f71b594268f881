"""The email-verification flow (users/verification.py), the tutorial's sequential chain
run inline: the link clicked → email.verified → ActivateAccount → account.activated →
SendActivationNotice, each link after the one before; and its refusals."""

import pytest

from users import verification

pytestmark = pytest.mark.django_db

ALICE = {"name": "Alice Johnson", "email": "alice@example.com", "password": "securepass123"}


@pytest.fixture
def alice(flow):
    response = flow.post("/users/register", ALICE)
    assert response.status_code == 201, response.content
    return response.json()["userId"]


def test_the_link_starts_the_chain_and_each_link_runs_after_the_one_before(flow, alice):
    response = flow.post(f"/users/{alice}/verify-email")
    assert response.status_code == 202, response.content
    assert response.json()["emailVerified"] is True
    flow.assert_emitted("email.verified", {"userId": alice, "email": ALICE["email"]}, count=1)
    flow.assert_emitted("account.activated", {"userId": alice, "email": ALICE["email"]}, count=1)
    activated = flow.assert_ran("ActivateAccount")[0]
    noticed = flow.assert_ran("SendActivationNotice")[0]
    assert activated.event.caused_by is None  # emitted by the API call
    assert noticed.event.caused_by_id == activated.event_id  # the chain, in order
    assert noticed.runs.get().started_at >= activated.runs.get().finished_at
    found = flow.get(f"/users/{alice}/verification").json()
    assert found == {
        "userId": alice,
        "emailVerified": True,
        "verifiedAt": found["verifiedAt"],
        "activated": True,
        "activatedAt": found["activatedAt"],
        "noticeSent": True,
    }
    assert found["verifiedAt"] <= found["activatedAt"]
    assert flow.slept.count(verification.NOTICE_SECONDS) == 1
    flow.assert_logged("Activation notice sent", step="SendActivationNotice")


def test_a_second_click_answers_200_and_starts_nothing(flow, alice):
    flow.post(f"/users/{alice}/verify-email")
    again = flow.post(f"/users/{alice}/verify-email")
    assert again.status_code == 200 and again.json()["activated"] is True
    assert len(flow.emitted("email.verified")) == 1


def test_before_the_welcome_email_is_sent_the_link_is_refused_with_409(flow):
    response = flow.post("/users/register", ALICE)
    user_id = response.json()["userId"]
    flow.state.delete("emails", f"welcome-{user_id}")  # as if SendWelcomeEmail had not run
    refused = flow.post(f"/users/{user_id}/verify-email")
    assert (refused.status_code, refused.json()) == (409, {"error": "Welcome email not sent yet"})
    assert flow.emitted("email.verified") == []
    assert flow.get(f"/users/{user_id}/verification").json()["emailVerified"] is False


def test_an_unknown_user_is_404_on_both_endpoints(flow):
    for method, path in [("post", "verify-email"), ("get", "verification")]:
        response = getattr(flow, method)(f"/users/user-0-00000000/{path}")
        assert (response.status_code, response.json()) == (404, {"error": "User not found"})
