"""Who may see what in the workbench: the admin's own model permissions.

A workbench page shows the rows of the runtime's models, so it takes the admin's view
permission on each model it shows, as the admin's change list of that model does; the
live feed carries log lines and run changes, so it takes the view permissions of both.
A staff user without them gets 403 from a page and a closed websocket, as the admin
answers. Superusers have every permission.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest

RUNS = "workflow.view_run"
LOGS = "workflow.view_logentry"
EVENTS = "workflow.view_event"
DELIVERIES = "workflow.view_delivery"
STATE = "workflow.view_stateentry"
# Replaying a dead letter runs code again, cancelling a trace stops it: the admin's
# actions that do so take the change permission on deliveries (workflow/admin.py).
REPLAY = "workflow.change_delivery"
# Editing a state value on the Flows page's State tab, as the admin's change form does.
EDIT_STATE = "workflow.change_stateentry"

# The page (its tab key) -> the permissions it needs.
PAGES: dict[str, tuple[str, ...]] = {
    "flows": (RUNS,),  # each step's runs, counted and listed
    "logs": (LOGS,),
    "traces": (RUNS, EVENTS, DELIVERIES, LOGS),  # a trace shows all four
    "queues": (DELIVERIES, RUNS),  # deliveries, and the tracebacks of their runs
    "state": (STATE,),
    "events": (EVENTS,),
    "deliveries": (DELIVERIES,),
    "endpoints": (RUNS,),  # the form shows the run and trace a request started
}
FEED: tuple[str, ...] = (RUNS, LOGS)


def is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def may_see(user, page: str) -> bool:
    """Whether ``user`` may open the workbench page ``page`` (a key of ``PAGES``)."""
    return is_staff(user) and user.has_perms(PAGES[page])


def may_replay(user) -> bool:
    """Whether ``user`` may replay dead letters and cancel traces."""
    return is_staff(user) and user.has_perm(REPLAY)


def may_edit_state(user) -> bool:
    """Whether ``user`` may edit state values (and see them: the State tab's view)."""
    return may_see(user, "state") and user.has_perm(EDIT_STATE)


def may_follow(user) -> bool:
    """Whether ``user`` may receive the live feed."""
    return is_staff(user) and user.has_perms(FEED)


def current_user(scope):
    """The user of a websocket's scope as the database says now: read again through a
    fresh copy of its session (a deleted session, a changed password or a deleted user
    give the anonymous user), with no permission cached. Without a session (a consumer
    tested alone), the scope's user read again by its primary key."""
    session = scope.get("session")
    if session is not None and session.session_key:
        request = HttpRequest()
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
        return get_user(request)
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return user
    return type(user)._default_manager.filter(pk=user.pk).first()
