"""Who may see the workbench: the admin's view permissions, on every page and on the
websocket, checked again while it is open; nothing the runtime recorded is deleted
from the admin unless a setting allows it."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import override_settings
from django.urls import reverse

from config.asgi import application
from tests.workbench.conftest import staff_user as staff
from workbench import permissions
from workflow.models import Delivery, Event, JoinState, LogEntry, Run, StateEntry

TRACE = "a" * 32
# Every workbench URL, with the page (permissions.PAGES key) it belongs to.
URLS = [
    ("workbench_flows", (), "flows"),
    ("workbench_step_runs", ("SendWelcomeEmail",), "flows"),
    ("workbench_logs", (), "logs"),
    ("workbench_traces", (), "traces"),
    ("workbench_trace", (TRACE,), "traces"),
    ("workbench_trace_timeline", (TRACE,), "traces"),
    ("workbench_trace_tables", (TRACE,), "traces"),
    ("workbench_trace_rows", (), "traces"),
    ("workbench_flow_traces", (), "traces"),
    ("workbench_state", (), "state"),
    ("workbench_queues", (), "queues"),
    ("workbench_queue_counts", (), "queues"),
    ("workbench_endpoints", (), "endpoints"),
]


@pytest.fixture
def trace(db):
    """A trace with a run, so the trace's pages exist."""
    Run.objects.create(step_name="RegisterUser", trace_id=TRACE, status=Run.Status.SUCCEEDED)


@pytest.mark.django_db
@pytest.mark.parametrize("name, args, page", URLS)
def test_a_staff_user_without_the_pages_permissions_gets_403(client, trace, name, args, page):
    """Staff status alone opens no page: without the view permissions of what the page
    shows the answer is 403, as from the admin's change list; with them, 200."""
    url = reverse(f"admin:{name}", args=args)
    client.force_login(staff("bare"))
    assert client.get(url).status_code == 403
    needed = permissions.PAGES[page]
    for missing in needed:  # each permission is needed: all but one is not enough
        client.force_login(staff(f"without-{missing}", *(p for p in needed if p != missing)))
        assert client.get(url).status_code == 403, missing
    client.force_login(staff(f"with-{page}", *needed))
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_the_admin_shows_only_the_pages_and_tabs_a_user_may_open(client):
    """A user who may see the logs only finds Logs on the admin index, in the tabs, and
    at /admin/workbench/; a staff user with no permission finds no workbench at all."""
    client.force_login(staff("logs-only", permissions.LOGS))
    index = client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("admin:workbench_logs")}"' in index
    assert f'href="{reverse("admin:workbench_flows")}"' not in index
    assert client.get("/admin/workbench/")["Location"] == reverse("admin:workbench_logs")
    tabs = [key for key, *_ in client.get(reverse("admin:workbench_logs")).context["tabs"]]
    assert tabs == ["logs"]

    client.force_login(staff("bare"))
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200 and "app-workbench" not in index.content.decode()
    assert client.get("/admin/workbench/").status_code == 403


def session_of(client, user):
    client.force_login(user)
    return client.cookies["sessionid"].value


@async_to_sync
async def closed_code(session_key, within, meanwhile=None):
    """The code the workbench websocket is closed with within ``within`` seconds of its
    opening (after ``meanwhile()`` ran), or None if it stays open. It is opened through
    the project's ASGI application, as a browser opens it: its origin, and the session
    cookie of a login."""
    headers = [(b"origin", b"http://localhost"), (b"cookie", f"sessionid={session_key}".encode())]
    socket = WebsocketCommunicator(application, "/workbench/ws/", headers=headers)
    accepted, _ = await socket.connect()
    assert accepted
    if meanwhile:
        await database_sync_to_async(meanwhile)()
    if await socket.receive_nothing(timeout=within, interval=0.05):
        await socket.disconnect()
        return None
    message = await socket.receive_output()
    return message["code"] if message["type"] == "websocket.close" else message


@pytest.mark.django_db(transaction=True)
def test_the_websocket_refuses_a_staff_user_without_the_feeds_permissions(client):
    """Connected with a staff session that lacks view_run or view_logentry: closed with
    4003 at once; with both it stays open."""
    for perms in [(), (permissions.RUNS,), (permissions.LOGS,)]:
        user = staff("staff-" + "-".join(perms), *perms)
        assert closed_code(session_of(client, user), within=0.5) == 4003, perms
    user = staff("follower", *permissions.FEED)
    assert closed_code(session_of(client, user), within=0.5) is None


def lose_permissions(user):
    user.user_permissions.clear()


def lose_staff_status(user):
    User.objects.filter(pk=user.pk).update(is_staff=False)


def be_deactivated(user):
    User.objects.filter(pk=user.pk).update(is_active=False)


def be_logged_out(user):
    Session.objects.all().delete()


def change_password(user):
    user.set_password("y" * 12)  # other sessions end, as after a password change
    user.save()


@pytest.mark.django_db(transaction=True)
@override_settings(WORKFLOW={"WORKBENCH_RECHECK": 0.2})
@pytest.mark.parametrize(
    "revoke",
    [lose_permissions, lose_staff_status, be_deactivated, be_logged_out, change_password],
)
def test_an_open_websocket_closes_within_the_recheck_once_the_user_is_no_longer_allowed(
    client, revoke
):
    """The user is read again from the database every WORKBENCH_RECHECK seconds: once
    it is no longer allowed, the websocket closes with 4003 and receives nothing more."""
    user = staff("follower", *permissions.FEED)
    session = session_of(client, user)
    assert closed_code(session, within=0.5) is None  # still allowed: rechecked, still open
    assert closed_code(session, within=1.0, meanwhile=lambda: revoke(user)) == 4003


def model_admin_url(model, view, *args):
    return reverse(f"admin:workflow_{model._meta.model_name}_{view}", args=args)


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Event, Delivery, Run, LogEntry, StateEntry, JoinState])
def test_the_admin_deletes_nothing_the_runtime_recorded_unless_a_setting_allows_it(client, model):
    """Not even a superuser gets the delete action or the delete page of events,
    deliveries, runs, log lines or state; WORKFLOW["ADMIN_DELETE"] gives them back."""
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "x" * 12))
    changelist = client.get(model_admin_url(model, "changelist"))
    assert changelist.status_code == 200
    assert "delete_selected" not in actions(changelist)
    assert client.get(model_admin_url(model, "delete", 1)).status_code == 403
    with override_settings(WORKFLOW={"ADMIN_DELETE": True}):
        assert "delete_selected" in actions(client.get(model_admin_url(model, "changelist")))


def actions(changelist):
    form = changelist.context["action_form"]
    return [name for name, _ in form.fields["action"].choices] if form else []
