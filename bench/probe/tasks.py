"""Plain django-q2 tasks: the baselines the framework's steps are measured against."""

import logging
from contextlib import contextmanager
from unittest import mock

from django_q.tasks import async_task

from users import services
from workflow.state import StateStore

from .stamps import stamp as _stamp

logger = logging.getLogger("workflow.steps")  # printed like the steps' lines


def noop(n=None):
    """Does nothing: the queue's own cost per job."""
    return None


def stamp(sent):
    """Records when it started (the baseline of a step's hop)."""
    _stamp(sent)


@contextmanager
def no_waiting():
    """The services without their simulated waits: a plain django-q2 worker runs one
    task at a time, so its floor is measured in CPU, not in sleeps (which cost none)."""
    with (
        mock.patch.object(services, "WELCOME_EMAIL_SECONDS", 0),
        mock.patch.object(services, "ACCOUNT_SETUP_SECONDS", 0),
    ):
        yield


def welcome(user):
    """SendWelcomeEmail as a plain task: the same service and log lines, then a job for
    the notification (its email.sent)."""
    user_id, email = user["userId"], user["email"]
    logger.info("[welcome] Sending welcome email userId=%s email=%s", user_id, email)
    with no_waiting():
        sent = services.send_welcome_email(StateStore(), user_id, user["name"], email)
    logger.info("[welcome] Email sent successfully userId=%s email=%s", user_id, email)
    async_task("bench.probe.tasks.notify", sent)
    logger.info("[welcome] Welcome email workflow completed userId=%s", user_id)


def setup(user):
    """SetupUserAccount as a plain task."""
    user_id = user["userId"]
    logger.info("[setup] Setting up user account userId=%s", user_id)
    with no_waiting():
        services.setup_account(StateStore(), user_id, user["name"], user["email"])
    logger.info("[setup] User account setup completed userId=%s", user_id)
    logger.info("[setup] Account setup workflow completed userId=%s", user_id)


def notify(sent):
    """LogNotification as a plain task."""
    user_id, type_ = sent["userId"], sent["type"]
    logger.info("[notify] Logging notification userId=%s type=%s", user_id, type_)
    log_id = services.log_notification(StateStore(), user_id, sent["email"], type_, sent["sentAt"])
    logger.info("[notify] Notification logged successfully userId=%s logId=%s", user_id, log_id)
