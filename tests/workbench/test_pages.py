"""The workbench pages, rendered by the server (the browser tests cover what is live)."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from workbench.views import logs as logs_view
from workflow import bus
from workflow.models import Delivery, Event, LogEntry, Run, Trace
from workflow.registry import registry
from workflow.schemas import validate
from workflow.steps import ApiStep, CronStep, EventStep, NoopStep

pytestmark = pytest.mark.django_db
PAGES = [
    "workbench_flows",
    "workbench_logs",
    "workbench_traces",
    "workbench_queues",
    "workbench_endpoints",
]


def url(name, *args):
    return reverse(f"admin:{name}", args=args)


def trace_id(n):
    return f"{n:032x}"


@pytest.mark.parametrize("name", PAGES)
def test_pages_are_for_staff_only(client, name):
    """Anonymous and non-staff users are sent to the admin login."""
    response = client.get(url(name))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(User.objects.create_user("clerk", password="x" * 12))
    response = client.get(url(name))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_admin_index_lists_the_workbench_first(staff_client):
    """The index's first section is Workbench, linking each page."""
    html = staff_client.get(reverse("admin:index")).content.decode()
    first_section = re.search(r'class="app-(\w+) module', html).group(1)
    assert first_section == "workbench"
    for name in PAGES:
        assert f'href="{url(name)}"' in html


def test_flows_page_draws_nodes_and_edges_with_counts_of_recent_runs(staff_client):
    """The tutorial's nodes and topic edges are in the SVG; each step's counts cover
    runs of the last 24 hours, running ids included for the page to follow; an API call
    answered with a 4xx counts as refused, not as a success."""
    now = timezone.now()
    for status in ["succeeded", "succeeded", "failed", "interrupted", "running"]:
        Run.objects.create(step_name="SendWelcomeEmail", trace_id=trace_id(1), status=status)
    for status, code in [("succeeded", 201), ("refused", 400), ("refused", 409)]:
        Run.objects.create(
            step_name="RegisterUser", trace_id=trace_id(3), status=status, status_code=code
        )
    Run.objects.create(
        step_name="SendWelcomeEmail", trace_id=trace_id(2), started_at=now - timedelta(days=2)
    )
    response = staff_client.get(url("workbench_flows") + "?flow=user-registration")
    html = response.content.decode()
    for step in ["RegisterUser", "SendWelcomeEmail", "SetupUserAccount", "LogNotification"]:
        assert f'data-node="{step}"' in html
    subscribers = registry.subscribers("user.registered")  # two, and any added since
    assert html.count('data-topics="user.registered"') == len(subscribers) >= 2
    assert 'data-topics="email.sent"' in html
    assert 'data-node="topic:open:account.setup.completed"' in html
    state = response.context["live_state"]
    assert state["counts"]["SendWelcomeEmail"] == {
        "running": 1,
        "succeeded": 2,
        "refused": 0,
        "failed": 2,
    }
    assert state["counts"]["RegisterUser"] == {
        "running": 0,
        "succeeded": 1,
        "refused": 2,
        "failed": 0,
    }
    assert state["counts"]["LogNotification"] == dict.fromkeys(
        ["running", "succeeded", "refused", "failed"], 0
    )
    register = node_markup(html, "RegisterUser")
    assert '<span class="wb-count">⊘<span class="refused">2</span></span>' in register
    assert '<span class="wb-count wb-zero">✗<span class="fail">0</span></span>' in register
    assert len(state["running"]) == 1
    assert state["steps"]["SendWelcomeEmail"]["subscribes"] == ["user.registered"]
    assert staff_client.get(url("workbench_flows") + "?flow=nope").status_code == 404


def api_handler(request, ctx):
    return {"status": 200, "body": {}}


def event_handler(input, ctx):
    return None


def node_markup(html, node_id):
    """The ``<g>`` of one node of the Flows page's SVG."""
    return re.search(
        rf'<g class="wb-node[^"]*" data-node="{re.escape(node_id)}".*?</g>', html, re.S
    )[0]


def test_flows_page_links_a_step_of_another_flow_and_marks_an_open_topic(staff_client, steps):
    """A step of another flow is a card linking to its flow, with no run counts and no
    config panel; an emit declared open ends at a card marked open, not a fault."""
    steps.add(
        ApiStep(name="Place", method="POST", path="/p", emits=["placed"], flows=["orders"]),
        api_handler,
    )
    opened = {"topic": "notified", "open": True}
    steps.add(
        EventStep(name="Notify", subscribes=["placed"], emits=[opened], flows=["orders"]),
        event_handler,
    )
    steps.add(EventStep(name="Bill", subscribes=["placed"], flows=["billing"]), event_handler)
    html = staff_client.get(url("workbench_flows") + "?flow=orders").content.decode()
    bill = node_markup(html, "Bill")
    assert bill.startswith('<g class="wb-node wb-kind-event wb-outside" data-node="Bill"')
    assert '<a href="?flow=billing" aria-label="Bill, flow billing: show that flow">' in bill
    assert "wb-counts" not in bill and "tabindex" not in bill
    place = node_markup(html, "Place")
    assert "wb-counts" in place and 'tabindex="0"' in place and "<a " not in place
    notified = node_markup(html, "topic:open:notified")
    assert notified.startswith('<g class="wb-node wb-kind-topic wb-open" ')
    assert "declared open" in notified and "wb-fault" not in html


PACK = "Packs the order's items in one box, or in two when they do not fit, then labels it"


def test_flows_page_cards_describe_their_steps_with_kind_icons(staff_client, steps, monkeypatch):
    """Each card shows its step's description in full (an API step's method and path
    when it has none) and its kind's icon, named for screen readers; a noop card counts
    no runs; a cron card says when it runs next, the page's script being sent the
    following times too (and the step's runs, more of them)."""
    monkeypatch.setattr(timezone, "now", lambda: datetime(2025, 1, 6, 2, 0, 30, tzinfo=UTC))
    steps.add(
        ApiStep(name="Place", method="POST", path="/p", emits=["placed"], flows=["shop"]),
        api_handler,
    )
    steps.add(
        EventStep(
            name="Pack", description=PACK, subscribes=["placed"], emits=["packed"], flows=["shop"]
        ),
        event_handler,
    )
    steps.add(
        CronStep(
            name="Restock", description="Orders what runs low", cron="15 3 * * *", flows=["shop"]
        ),
        lambda ctx: None,
    )
    courier = NoopStep(
        name="Courier",
        description="Takes the box away",
        virtual_subscribes=["packed"],
        flows=["shop"],
    )
    steps.add(courier, None)
    response = staff_client.get(url("workbench_flows") + "?flow=shop")
    html = response.content.decode()
    place = node_markup(html, "Place")
    assert '<div class="wb-desc" title="POST /p">POST /p</div>' in place
    pack = node_markup(html, "Pack")
    assert f'title="{PACK}">{PACK}</div>'.replace("'", "&#x27;") in pack
    assert "…" not in pack
    for node, kind in [
        ("Place", "API"),
        ("Pack", "Event"),
        ("Restock", "Cron"),
        ("Courier", "Noop"),
    ]:
        icon = f'role="img" aria-label="{kind} step"><title>{kind} step</title>'
        assert icon in node_markup(html, node), node
        assert f'<use href="#wb-icon-{kind.lower()}">' in node_markup(html, node)
        assert f'<symbol id="wb-icon-{kind.lower()}"' in html
    assert "wb-counts" in place and "wb-counts" in pack
    courier = node_markup(html, "Courier")
    assert "wb-counts" not in courier and "wb-card-foot" not in courier
    assert set(response.context["live_state"]["counts"]) == {"Place", "Pack", "Restock"}
    restock = node_markup(html, "Restock")
    assert 'title="Next run: 2025-01-06 03:15:00 UTC">next <time' in restock
    assert '<time datetime="2025-01-06T03:15:00+00:00">03:15:00</time>' in restock
    upcoming = response.context["live_state"]["nextRuns"]["Restock"]
    assert [run["label"] for run in upcoming[:2]] == ["03:15:00", "2025-01-07 03:15"]
    assert list(response.context["live_state"]["nextRuns"]) == ["Restock"]
    runs = staff_client.get(url("workbench_step_runs", "Restock")).json()
    assert runs["nextRuns"][0]["at"] == "2025-01-06T03:15:00+00:00"
    assert staff_client.get(url("workbench_step_runs", "Pack")).json()["nextRuns"] == []


def test_a_steps_last_runs(staff_client):
    """The node panel's runs: newest first, with status, attempt, trace and, for an API
    call, the status code it answered."""
    Run.objects.create(step_name="SendWelcomeEmail", trace_id=trace_id(1), status="failed")
    Run.objects.create(
        step_name="SendWelcomeEmail", trace_id=trace_id(1), status="running", attempt=2
    )
    runs = staff_client.get(url("workbench_step_runs", "SendWelcomeEmail")).json()["runs"]
    assert [(r["status"], r["attempt"]) for r in runs] == [("running", 2), ("failed", 1)]
    assert [r["statusCode"] for r in runs] == [None, None]
    Run.objects.create(
        step_name="RegisterUser", trace_id=trace_id(2), status="refused", status_code=409
    )
    runs = staff_client.get(url("workbench_step_runs", "RegisterUser")).json()["runs"]
    assert [(r["status"], r["statusCode"]) for r in runs] == [("refused", 409)]
    assert staff_client.get(url("workbench_step_runs", "Nope")).status_code == 404


def test_logs_are_filtered_escaped_and_paged(staff_client, monkeypatch):
    """Filters by step, level, trace and text; markup in a line is shown as text; the
    page links to older lines."""
    monkeypatch.setattr(logs_view, "PAGE", 3)
    LogEntry.objects.create(level="info", message="a", step_name="A", trace_id=trace_id(1))
    LogEntry.objects.create(level="error", message="b", step_name="B", trace_id=trace_id(2))
    LogEntry.objects.create(
        level="info", message="<script>alert(1)</script>", step_name="B", trace_id=trace_id(2)
    )
    LogEntry.objects.create(level="warn", message="d", step_name="A", trace_id=trace_id(3))

    def shown(query=""):
        return [
            line.message
            for line in staff_client.get(url("workbench_logs") + query).context["lines"]
        ]

    assert shown() == ["d", "<script>alert(1)</script>", "b"]
    assert shown("?step=A") == ["d", "a"]
    assert shown("?level=error") == ["b"]
    assert shown(f"?trace={trace_id(2)}") == ["<script>alert(1)</script>", "b"]
    assert shown("?q=ALERT") == ["<script>alert(1)</script>"]
    html = staff_client.get(url("workbench_logs")).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    older = re.search(r'before=(\d+)">Older lines', html).group(1)
    assert shown(f"?before={older}") == ["a"]


def new_user(email="u@example.com"):
    """Data of a ``user.registered`` event its subscribers take."""
    return {"userId": "u", "name": "U", "email": email}


def traced(n, entry="RegisterUser"):
    return Trace.objects.create(trace_id=trace_id(n), entry_step=entry)


def test_traces_list_status_and_search(staff_client):
    """A trace is running while a delivery is unfinished, failed when one went dead or
    its API call failed, refused when its API call answered with a 4xx, else succeeded;
    each shows the status code its API call answered; search finds a trace by a value
    in its events' data or by its id."""
    traced(1)
    bus.emit("user.registered", new_user("zoe@example.com"), trace_id=trace_id(1))
    Delivery.objects.filter(trace_id=trace_id(1)).update(status="succeeded")
    traced(2)
    Delivery.objects.create(step_name="S", trace_id=trace_id(2), status="dead")
    traced(3)
    Delivery.objects.create(step_name="S", trace_id=trace_id(3), status="pending")
    Delivery.objects.create(step_name="T", trace_id=trace_id(3), status="dead")
    traced(4)
    Run.objects.create(
        step_name="RegisterUser", trace_id=trace_id(4), status="failed", status_code=500
    )
    traced(5)
    Run.objects.create(
        step_name="RegisterUser", trace_id=trace_id(5), status="refused", status_code=409
    )
    response = staff_client.get(url("workbench_traces"))
    rows = response.context["rows"]
    assert [(row.trace.trace_id, row.status, row.status_code) for row in rows] == [
        (trace_id(5), "refused", 409),
        (trace_id(4), "failed", 500),
        (trace_id(3), "running", None),
        (trace_id(2), "failed", None),
        (trace_id(1), "succeeded", None),
    ]
    html = response.content.decode()
    assert re.search(r'wb-status-refused">refused</span></td>\s*<td>409</td>', html)
    found = staff_client.get(url("workbench_traces") + "?q=ZOE@example").context["rows"]
    assert [row.trace.trace_id for row in found] == [trace_id(1)]
    found = staff_client.get(url("workbench_traces") + f"?q={trace_id(2)}").context["rows"]
    assert [row.trace.trace_id for row in found] == [trace_id(2)]


def test_a_trace_page_has_a_bar_per_run_its_events_and_its_logs(staff_client):
    """Each run is a bar placed by its start and end (a retry is a bar of its own), an
    API call's with the status code it answered, also shown by the entry; event data is
    shown as escaped JSON; an unknown trace is 404."""
    start = timezone.now() - timedelta(seconds=2)
    traced(1)
    times = [(0, 0.1, "succeeded", 1), (0.2, 1.2, "failed", 1), (1.5, 2.0, "succeeded", 2)]
    for begin, end, status, attempt in times:
        Run.objects.create(
            step_name="RegisterUser" if begin == 0 else "SendWelcomeEmail",
            trace_id=trace_id(1),
            status=status,
            attempt=attempt,
            status_code=201 if begin == 0 else None,
            started_at=start + timedelta(seconds=begin),
            finished_at=start + timedelta(seconds=end),
        )
    Event.objects.create(topic="t", data={"name": "<b>bold</b>"}, trace_id=trace_id(1))
    response = staff_client.get(url("workbench_trace", trace_id(1)))
    bars = response.context["bars"]
    assert [(b.run.step_name, b.run.attempt) for b in bars] == [
        ("RegisterUser", 1),
        ("SendWelcomeEmail", 1),
        ("SendWelcomeEmail", 2),
    ]
    assert [round(b.left) for b in bars] == [0, 10, 75]
    assert [round(b.width) for b in bars] == [5, 50, 25]
    assert response.context["span_ms"] == 2000
    html = response.content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert 'answered <span class="wb-status wb-status-succeeded">201</span>' in html
    timeline = staff_client.get(url("workbench_trace_timeline", trace_id(1))).content.decode()
    assert timeline.count('class="wb-bar-row"') == 3
    assert timeline.count('<small class="wb-status-code">201</small>') == 1
    assert staff_client.get(url("workbench_trace", trace_id(9))).status_code == 404


def test_endpoints_list_api_steps_with_a_body_prefilled_from_the_schema(staff_client):
    """Every API step is listed with method and path; a POST's body is prefilled with
    each writable field of its body schema, with values the schema accepts."""
    response = staff_client.get(url("workbench_endpoints"))
    endpoints = {(e["method"], e["path"]): e for e in response.context["endpoints"]}
    assert set(endpoints) >= {("POST", "/users/register"), ("GET", "/users/:userId/status")}
    register = endpoints[("POST", "/users/register")]
    body = json.loads(register["example"])
    assert body == {"name": "string", "email": "user@example.com", "password": "string01"}
    validate(register["step"].config.body_schema, body)
    assert endpoints[("GET", "/users/:userId/status")]["path_params"] == ["userId"]
    assert 'href="/api/docs/">Swagger UI</a>' in response.content.decode()


def test_an_api_call_and_an_emit_from_outside_a_step_each_begin_a_trace(client):
    """The trace list's rows: the API step's name for a call; the emitter for an emit
    with no trace; an emit within a trace begins none."""
    response = client.post(
        "/users/register",
        {"name": "Ann", "email": "ann@example.com", "password": "securepass123"},
        content_type="application/json",
    )
    assert Trace.objects.get(trace_id=response["X-Trace-Id"]).entry_step == "RegisterUser"
    event = bus.emit("user.registered", new_user(), emitted_by="shell")
    assert Trace.objects.get(trace_id=event.trace_id).entry_step == "shell"
    bus.emit("user.registered", new_user(), trace_id=event.trace_id)
    assert Trace.objects.count() == 2


def test_state_is_searchable_by_a_value_and_shown_as_escaped_json(staff_client):
    """The State change list finds an entry by text inside its JSON value; its page
    shows the value indented, with markup escaped."""
    from workflow.models import StateEntry

    zed = StateEntry.objects.create(group="emails", key="k1", value={"to": "<i>zed</i>"})
    StateEntry.objects.create(group="emails", key="k2", value={"to": "amy@example.com"})
    changelist = reverse("admin:workflow_stateentry_changelist")
    found = staff_client.get(changelist + "?q=zed").context["cl"].result_list
    assert [entry.key for entry in found] == ["k1"]
    html = staff_client.get(reverse("admin:workflow_stateentry_change", args=[zed.pk]))
    html = html.content.decode()
    assert "&quot;to&quot;: &quot;&lt;i&gt;zed&lt;/i&gt;&quot;" in html
    assert "<i>zed</i>" not in html


def test_deliveries_filter_by_topic_and_link_their_trace(staff_client):
    """Deliveries can be filtered by their event's topic (and status, e.g. dead); each
    row links to its trace's page."""
    bus.emit("user.registered", new_user(), trace_id=trace_id(5))
    sent = {"userId": "u", "email": "u@example.com", "type": "welcome", "sentAt": "now"}
    bus.emit("email.sent", sent, trace_id=trace_id(6))
    changelist = reverse("admin:workflow_delivery_changelist")
    response = staff_client.get(changelist + "?event__topic=email.sent")
    assert [d.step_name for d in response.context["cl"].result_list] == ["LogNotification"]
    assert f'href="{url("workbench_trace", trace_id(6))}"' in response.content.decode()


def test_a_traces_events_and_deliveries_and_the_newest_traces_are_served_alone(staff_client):
    """What the open pages fetch again as runs change: a trace's events and deliveries
    (as its page shows them), and the Traces list's newest rows; the list says where to
    fetch them only when it shows the newest traces (not a search, not an older page)."""
    traced(1)
    bus.emit("user.registered", new_user("zoe@example.com"), trace_id=trace_id(1))
    Delivery.objects.filter(trace_id=trace_id(1), step_name="SendWelcomeEmail").update(
        status="dead", last_error="SMTP <down>"
    )
    page = staff_client.get(url("workbench_trace", trace_id(1))).content.decode()
    tables = staff_client.get(url("workbench_trace_tables", trace_id(1))).content.decode()
    assert tables.strip() and tables.strip() in page  # the same markup, in the page
    assert tables.count("<code>user.registered</code>") == 1
    assert 'wb-status-dead">dead</span>' in tables and "SMTP &lt;down&gt;" in tables
    assert staff_client.get(url("workbench_trace_tables", trace_id(9))).status_code == 404

    traced(2)
    rows = staff_client.get(url("workbench_trace_rows")).content.decode()
    assert rows.index(trace_id(2)) < rows.index(trace_id(1))  # newest first
    assert rows.count("<tr>") == 2
    listed = staff_client.get(url("workbench_traces")).content.decode()
    assert f'data-url="{url("workbench_trace_rows")}"' in listed
    for query in ("?q=zoe", f"?before={Trace.objects.get(trace_id=trace_id(2)).pk}"):
        listed = staff_client.get(url("workbench_traces") + query).content.decode()
        assert "data-url=" not in listed.split('id="wb-traces"')[1].split(">")[0]


def test_a_log_lines_fields_are_shown_inline_as_the_console_prints_them(staff_client):
    """key=value after the message (a string as it is, anything else as JSON, escaped),
    the indented JSON a click away, on the Logs page and a trace's page."""
    traced(1)
    LogEntry.objects.create(
        level="info",
        message="Sending welcome email",
        step_name="SendWelcomeEmail",
        trace_id=trace_id(1),
        fields={"email": "<b>a@example.com</b>", "attempt": 2, "tags": ["x"]},
    )
    for page in (url("workbench_logs"), url("workbench_trace", trace_id(1))):
        html = staff_client.get(page).content.decode()
        inline = re.search(r'<span class="wb-fields">(.*?)</span></summary>', html).group(1)
        text = re.sub(r"<[^>]+>", "", inline)
        assert text == "email=&lt;b&gt;a@example.com&lt;/b&gt;attempt=2tags=[&quot;x&quot;]", page
