"""The Flows page's panel under the graph: its Tracing, State and Logs tabs, each shown
to those who may see what it shows, and the endpoints they fetch."""

import json

import pytest
from django.urls import reverse

from tests.workbench.conftest import staff_user as staff
from workbench import permissions
from workflow.models import Event, LogEntry, Run, StateEntry, Trace

pytestmark = pytest.mark.django_db
FLOWS = reverse("admin:workbench_flows")
TRACES = reverse("admin:workbench_flow_traces")
STATE = reverse("admin:workbench_state")
EDIT = reverse("admin:workbench_state_edit")


def trace_id(n):
    return f"{n:032x}"


def a_trace(n, step, data=None):
    Trace.objects.create(trace_id=trace_id(n), entry_step=step)
    Run.objects.create(step_name=step, trace_id=trace_id(n), status=Run.Status.SUCCEEDED)
    if data is not None:
        Event.objects.create(topic="user.registered", data=data, trace_id=trace_id(n))


def listed(client, **params):
    response = client.get(TRACES, params)
    assert response.status_code == 200
    return [row["traceId"] for row in response.json()["traces"]]


def test_the_flows_traces_are_those_that_ran_one_of_its_steps_newest_first(staff_client):
    """Only traces that ran a step of the flow, newest first, with their summaries; the
    search finds one by its id (whole or its start), by a step's name, or by a value in
    its events' data."""
    a_trace(1, "RegisterUser", {"email": "ann@example.com"})
    a_trace(2, "SendWelcomeEmail", {"email": "bob@example.com"})
    a_trace(3, "NotInAnyFlow")
    assert listed(staff_client, flow="user-registration") == [trace_id(2), trace_id(1)]
    row = staff_client.get(TRACES, {"flow": "user-registration"}).json()["traces"][1]
    assert row["entryStep"] == "RegisterUser"
    assert row["status"] == "succeeded" and row["runs"] == 1
    assert listed(staff_client, flow="user-registration", q="ann@example") == [trace_id(1)]
    assert listed(staff_client, flow="user-registration", q=trace_id(2)) == [trace_id(2)]
    assert listed(staff_client, flow="user-registration", q="welcome") == [trace_id(2)]
    assert listed(staff_client, flow="user-registration", q="0000000000") == [
        trace_id(2),
        trace_id(1),
    ]
    assert listed(staff_client, flow="user-registration", q=trace_id(3)) == []
    assert listed(staff_client, flow="user-registration", q="nobody") == []
    assert staff_client.get(TRACES, {"flow": "nope"}).status_code == 404


def test_the_flows_page_seeds_its_logs_tab_with_the_flows_last_lines(staff_client):
    """The page carries the last lines of the flow's steps (not others'), newest first,
    with their fields, and shows the three tabs to a superuser."""
    LogEntry.objects.create(
        level="info", message="old", step_name="RegisterUser", trace_id=trace_id(1)
    )
    LogEntry.objects.create(
        level="warn",
        message="new",
        step_name="SendWelcomeEmail",
        trace_id=trace_id(1),
        fields={"email": "<b>ann</b>"},
    )
    LogEntry.objects.create(level="info", message="other", step_name="X", trace_id=trace_id(2))
    response = staff_client.get(FLOWS, {"flow": "user-registration"})
    logs = response.context["live_state"]["logs"]
    assert [line["message"] for line in logs] == ["new", "old"]
    assert logs[0]["fields"] == {"email": "<b>ann</b>"} and logs[0]["step"] == "SendWelcomeEmail"
    html = response.content.decode()
    for tab in ["tracing", "state", "logs"]:
        assert f'id="wb-tab-{tab}"' in html
    assert "<b>ann</b>" not in html  # in the page's JSON, escaped


def test_each_tab_is_shown_only_to_those_who_may_see_what_it_shows(client):
    """A user who may see the flows and the logs gets the Logs tab only, with its lines;
    one who may also see the state gets the State tab, but no edit without the change
    permission; with none of them, no panel at all."""
    LogEntry.objects.create(level="info", message="hi", step_name="RegisterUser", trace_id="a")
    client.force_login(staff("logs", permissions.RUNS, permissions.LOGS))
    response = client.get(FLOWS)
    html = response.content.decode()
    assert 'id="wb-tab-logs"' in html
    assert 'id="wb-tab-tracing"' not in html and 'id="wb-tab-state"' not in html
    assert response.context["live_state"]["logs"][0]["message"] == "hi"

    client.force_login(staff("state", permissions.RUNS, permissions.STATE))
    response = client.get(FLOWS)
    html = response.content.decode()
    assert 'id="wb-tab-state"' in html and 'data-may-edit="1"' not in html
    assert 'id="wb-tab-logs"' not in html
    assert response.context["live_state"]["logs"] == []

    client.force_login(staff("flows", permissions.RUNS))
    html = client.get(FLOWS).content.decode()
    assert 'id="wb-dock"' not in html


def test_the_state_tab_lists_groups_and_a_groups_values(staff_client):
    StateEntry.objects.create(group="users", key="u1", value={"name": "Ann"})
    StateEntry.objects.create(group="users", key="u2", value={"name": "Bob"})
    StateEntry.objects.create(group="emails", key="e1", value=[1, 2])
    data = staff_client.get(STATE).json()
    assert data["groups"] == [{"group": "emails", "count": 1}, {"group": "users", "count": 2}]
    assert data["entries"] == [] and data["mayEdit"] is True
    data = staff_client.get(STATE, {"group": "users"}).json()
    assert [(e["key"], e["value"]) for e in data["entries"]] == [
        ("u1", {"name": "Ann"}),
        ("u2", {"name": "Bob"}),
    ]


def test_a_state_value_is_edited_as_json_through_the_state_api(staff_client):
    """A JSON value is stored (and answered as stored); text that is not JSON is
    refused with 400 and a message saying where, and changes nothing."""
    entry = StateEntry.objects.create(group="users", key="u1", value={"name": "Ann"})
    before = entry.updated_at
    response = staff_client.post(
        EDIT, {"group": "users", "key": "u1", "value": '{"name": "Anne", "n": [1, 2]}'}
    )
    assert response.status_code == 200
    assert response.json()["value"] == {"name": "Anne", "n": [1, 2]}
    entry.refresh_from_db()
    assert entry.value == {"name": "Anne", "n": [1, 2]} and entry.updated_at > before

    response = staff_client.post(EDIT, {"group": "users", "key": "u1", "value": '{"name": '})
    assert response.status_code == 400
    assert response.json()["error"].startswith("Not JSON: ")
    assert "line 1" in response.json()["error"]
    entry.refresh_from_db()
    assert entry.value == {"name": "Anne", "n": [1, 2]}
    response = staff_client.post(EDIT, {"group": "users", "key": "u1", "value": "NaN"})
    assert response.status_code == 400
    assert staff_client.get(EDIT).status_code == 405
    for group, key, message in (
        ("g" * 201, "u1", "A group is 200 characters at most."),
        ("users", "k" * 501, "A key is 500 characters at most."),
    ):
        response = staff_client.post(EDIT, {"group": group, "key": key, "value": "1"})
        assert (response.status_code, response.json()["error"]) == (400, message)
    assert StateEntry.objects.count() == 1


def test_editing_state_takes_the_change_permission_and_a_csrf_token(client):
    """Without change_stateentry: 403 and nothing changed; without view_stateentry,
    403 too; a POST without the CSRF token is refused."""
    StateEntry.objects.create(group="users", key="u1", value=1)
    body = {"group": "users", "key": "u1", "value": "2"}
    client.force_login(staff("viewer", permissions.STATE))
    response = client.post(EDIT, body)
    assert response.status_code == 403
    assert client.get(STATE).json()["mayEdit"] is False
    client.force_login(staff("changer-only", permissions.EDIT_STATE))
    assert client.post(EDIT, body).status_code == 403
    assert StateEntry.objects.get(key="u1").value == 1

    client.force_login(staff("editor", permissions.STATE, permissions.EDIT_STATE))
    assert client.post(EDIT, body).status_code == 200
    assert StateEntry.objects.get(key="u1").value == 2
    client.handler.enforce_csrf_checks = True
    assert client.post(EDIT, {**body, "value": "3"}).status_code == 403
    assert json.loads(json.dumps(StateEntry.objects.get(key="u1").value)) == 2
