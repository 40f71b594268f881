"""The email-verification flow, the tutorial's sequential chain after the welcome email:
``POST /users/:userId/verify-email`` (the link in the email, clicked) emits
``email.verified`` → ``ActivateAccount`` emits ``account.activated`` →
``SendActivationNotice``. Each link runs only once the one before it has, and each
records its part of the user's verification (state group ``verifications``), which
``GET /users/:userId/verification`` shows.

The link is simulated, as the welcome email is: a real one would carry a signed token
(``django.core.signing``) for the endpoint to check.
"""

import time
from typing import Any

from workflow.state import State

from .services import iso_now

GROUP = "verifications"
NOTICE_SECONDS = 0.2  # sending the activation notice (simulated, by sleeping)


class NotYet(Exception):
    """The user cannot be verified yet: the welcome email was not sent."""


def blank(user_id: str) -> dict[str, Any]:
    return {
        "userId": user_id,
        "emailVerified": False,
        "verifiedAt": None,
        "activated": False,
        "activatedAt": None,
        "noticeSent": False,
    }


def verification(state: State, user_id: str) -> dict[str, Any] | None:
    """What GET /users/:userId/verification answers; None for no such user."""
    if state.get("users", user_id) is None:
        return None
    return state.get(GROUP, user_id) or blank(user_id)


def verify_email(state: State, user_id: str) -> tuple[dict[str, Any], bool]:
    """Record the user's email as verified: ``(the verification, whether it is new)``.
    Raises ``NotYet`` before the welcome email was sent (the link is in it)."""
    if state.get("emails", f"welcome-{user_id}") is None:
        raise NotYet(user_id)
    current = state.get(GROUP, user_id) or blank(user_id)
    if current["emailVerified"]:
        return current, False
    return _record(state, user_id, emailVerified=True, verifiedAt=iso_now()), True


def activate(state: State, user_id: str) -> dict[str, Any]:
    """Activate the account of a verified email."""
    return _record(state, user_id, activated=True, activatedAt=iso_now())


def send_activation_notice(state: State, user_id: str) -> dict[str, Any]:
    """Send (simulated) the notice that the account is active."""
    time.sleep(NOTICE_SECONDS)
    return _record(state, user_id, noticeSent=True)


def _record(state: State, user_id: str, **changes: Any) -> dict[str, Any]:
    return state.update(GROUP, user_id, lambda current: {**(current or blank(user_id)), **changes})
