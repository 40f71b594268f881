"""The business logic of the user-registration flow; the steps call these.

Timings and payloads follow the tutorial: the welcome email takes 1.0 s, the account
setup 0.8 s (both simulated by sleeping, as there).
"""

import secrets
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from workflow.state import State

from .models import Account

WELCOME_EMAIL_SECONDS = 1.0
ACCOUNT_SETUP_SECONDS = 0.8
WELCOME_SUBJECT = "Welcome to Our Platform!"


class EmailTaken(Exception):
    pass


def iso_now() -> str:
    """The time as the tutorial writes it: 2024-01-28T10:30:00.000Z."""
    return timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_user_id() -> str:
    """``user-<ms>-<random>``: sortable like the tutorial's, unique within a millisecond."""
    return f"user-{time.time_ns() // 1_000_000}-{secrets.token_hex(4)}"


def register_user(state: State, name: str, email: str, password_hash: str) -> dict[str, Any]:
    """Create the account and the pending user; raises EmailTaken for a known email."""
    user_id = new_user_id()
    try:
        with transaction.atomic():
            Account.objects.create(user_id=user_id, email=email.lower(), password=password_hash)
    except IntegrityError:
        if Account.objects.filter(email=email.lower()).exists():
            raise EmailTaken(email) from None
        raise
    user = {
        "userId": user_id,
        "name": name,
        "email": email,
        "status": "pending",
        "createdAt": iso_now(),
    }
    state.set("users", user_id, user)
    return user


def send_welcome_email(state: State, user_id: str, name: str, email: str) -> dict[str, Any]:
    """Send (simulated) and record the welcome email; returns the email.sent data."""
    message = {
        "to": email,
        "subject": WELCOME_SUBJECT,
        "body": f"Hello {name},\n\nWelcome to our platform!",
    }
    time.sleep(WELCOME_EMAIL_SECONDS)
    state.set(
        "emails",
        f"welcome-{user_id}",
        {
            "userId": user_id,
            "email": email,
            "type": "welcome",
            "subject": message["subject"],
            "sentAt": iso_now(),
        },
    )
    return {"userId": user_id, "email": email, "type": "welcome", "sentAt": iso_now()}


def setup_account(state: State, user_id: str, name: str, email: str) -> dict[str, Any]:
    """Create default settings and profile, and activate the user."""
    settings = {
        "userId": user_id,
        "theme": "light",
        "notifications": True,
        "language": "en",
        "timezone": "UTC",
    }
    profile = {
        "userId": user_id,
        "name": name,
        "email": email,
        "bio": "",
        "avatar": "https://via.placeholder.com/150",
        "joinedAt": iso_now(),
    }
    time.sleep(ACCOUNT_SETUP_SECONDS)
    state.set("user-settings", user_id, settings)
    state.set("user-profiles", user_id, profile)
    if state.get("users", user_id) is not None:
        updated_at = iso_now()
        state.update(
            "users", user_id, lambda user: {**user, "status": "active", "updatedAt": updated_at}
        )
    return {"userId": user_id, "settings": settings, "profile": profile}


def log_notification(state: State, user_id: str, email: str, type: str, sent_at: str) -> str:
    """Store the notification log entry and count it for the user."""
    log_id = f"{user_id}-{type}-{time.time_ns() // 1_000_000}"
    state.set(
        "notification-logs",
        log_id,
        {
            "userId": user_id,
            "email": email,
            "type": type,
            "sentAt": sent_at,
            "loggedAt": iso_now(),
        },
    )
    state.update(
        "notification-counts",
        user_id,
        lambda counts: {
            "count": (counts or {"count": 0})["count"] + 1,
            "lastNotification": sent_at,
        },
    )
    return log_id


def user_status(state: State, user_id: str) -> dict[str, Any] | None:
    """The status view of a user, or None if there is no such user."""
    user = state.get("users", user_id)
    if user is None:
        return None
    return {
        "userId": user["userId"],
        "name": user["name"],
        "email": user["email"],
        "status": user["status"],
        "createdAt": user["createdAt"],
        "emailSent": state.get("emails", f"welcome-{user_id}") is not None,
        "accountSetup": state.get("user-settings", user_id) is not None,
    }
