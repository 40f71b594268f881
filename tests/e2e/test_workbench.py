"""The workbench in a real browser: headless Chromium (Debian's) driven by Playwright,
against `manage.py runserver` with its real workers: on the embedded default (SQLite,
in-memory channel layer: live updates come through the web server's relay), and with
channels-redis (live updates sent by the workers themselves).

Screenshots of each page are saved in test-artifacts/screenshots/ (not committed).
"""

import json
import re
import socket
import textwrap
import time

import pytest

from bench.stack import Stack
from tests.e2e.browsing import SHOTS, launched_chromium, needs_chromium
from tests.e2e.conftest import scratch_env

pytestmark = pytest.mark.e2e
PASSWORD = "workbench-pass-123"
TUTORIAL_STEPS = [
    "RegisterUser",
    "SendWelcomeEmail",
    "SetupUserAccount",
    "LogNotification",
    "GetUserStatus",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

REDIS_URL = "redis://127.0.0.1:6379/13"


def redis_up():
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


LAYERS = [
    "in-memory",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(not redis_up(), reason="Redis is not running on 127.0.0.1:6379"),
    ),
]

CREATE_USERS = """
from django.contrib.auth.models import Permission, User
User.objects.create_superuser("admin", "admin@example.com", {password!r})
User.objects.create_user("clerk", "clerk@example.com", {password!r})
User.objects.create_user("viewer", "viewer@example.com", {password!r}, is_staff=True)
follower = User.objects.create_user("follower", "f@example.com", {password!r}, is_staff=True)
follower.user_permissions.set(
    Permission.objects.filter(content_type__app_label="workflow", codename__startswith="view_")
)
"""


# A flow beside the tutorial's with the kinds it lacks: a cron step and a noop step.
NIGHTLY_STEPS = {
    "digest_step.py": """
        from workflow.steps import CronStep

        config = CronStep(
            name="NightlyDigest",
            description="Collects the day's registrations into a digest for the support team",
            cron="15 3 * * *",
            emits=["digest.ready"],
            flows=["nightly"],
        )


        def handler(ctx):
            ctx.emit("digest.ready", {})
    """,
    "send_digest_step.py": """
        from workflow.steps import EventStep

        config = EventStep(
            name="SendDigest",
            description="Mails the digest",
            subscribes=["digest.ready"],
            virtual_emits=["digest.sent"],
            flows=["nightly"],
        )


        def handler(input, ctx):
            pass
    """,
    "review_step.py": """
        from workflow.steps import NoopStep

        config = NoopStep(
            name="ReviewDigest",
            description="Someone on the support team reads it and checks the flagged accounts",
            virtual_subscribes=["digest.sent"],
            flows=["nightly"],
        )
    """,
}


def nightly_app(root):
    """The scratch app (tests/e2e/scratch_settings.py) with the nightly flow's steps."""
    steps = root / "apps" / "scratch" / "steps"
    steps.mkdir(parents=True)
    (steps.parent / "__init__.py").write_text("")
    (steps / "__init__.py").write_text("")
    for name, source in NIGHTLY_STEPS.items():
        (steps / name).write_text(textwrap.dedent(source).lstrip())
    return steps


@pytest.fixture(scope="module", params=LAYERS)
def workbench(request, tmp_path_factory):
    """runserver (no autoreload: other edits must not restart it) with a superuser
    'admin', a non-staff user 'clerk', a staff user 'viewer' with no permission and a
    staff user 'follower' with the view permissions of the workflow app, on each
    channel layer; with the tutorial's flow and a 'nightly' flow (cron, event, noop)."""
    env = scratch_env(nightly_app(tmp_path_factory.mktemp("nightly")))
    if request.param == "redis":
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        env["REDIS_URL"] = REDIS_URL
    stack = Stack(tmp_path_factory.mktemp("workbench"), env=env, reload=False)
    stack.layer = request.param
    stack.manage("migrate", "--noinput", "-v0")
    stack.manage("shell", "-c", CREATE_USERS.format(password=PASSWORD))
    with stack:
        yield stack


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as launched:
        yield launched


def logged_in(browser, stack, username="admin"):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{stack.base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()
    return context, page


def shot(page, stack, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{stack.layer}.png"), full_page=True)


def wait_live(page):
    page.wait_for_selector("#wb-live[data-state=on]", timeout=10_000)


def record_lit(page):
    """Keep, in the page, the steps whose nodes pulsed and the topics whose edges lit."""
    page.evaluate(
        """() => {
        window.lit = {nodes: [], edges: []};
        new MutationObserver((changes) => changes.forEach((change) => {
            const el = change.target;
            if (el.classList.contains("wb-pulse")) window.lit.nodes.push(el.dataset.node);
            if (el.classList.contains("wb-lit")) window.lit.edges.push(el.dataset.topics);
        })).observe(document.getElementById("wb-graph"),
            {subtree: true, attributes: true, attributeFilter: ["class"]});
    }"""
    )


@needs_chromium
def test_flows_page_draws_the_tutorial_flow(workbench, browser):
    """Logged in as staff: the admin index links the workbench, and its View site the
    project's page (the flow, the workers running, the workbench); Flows draws the five
    tutorial steps, the three topic edges (and the welcome email's link to the
    email-verification chain, dashed), and account.setup.completed as an open end
    (declared open: no fault); clicking a node shows its config."""
    context, page = logged_in(browser, workbench)
    assert page.locator(".app-workbench a", has_text="Flows").count() == 1
    shot(page, workbench, "01-admin-index")
    page.click("#user-tools a:text('View site')")
    page.wait_for_selector("#home-flows")
    assert page.url == f"{workbench.base}/"
    assert page.locator("#home-flows a", has_text="user-registration").count() == 1
    assert page.locator("#home-workers .home-status").inner_text() == "running"
    shot(page, workbench, "00-landing")
    page.go_back()
    page.click(".app-workbench a:text('Flows')")
    page.wait_for_selector("#wb-graph")
    assert page.locator("#wb-flow option:checked").inner_text() == "user-registration"
    for step in TUTORIAL_STEPS:
        assert page.locator(f'.wb-node[data-node="{step}"]').count() == 1, step
    assert page.locator('.wb-node[data-node="RegisterUser"]').get_attribute("class").split()[1] == (
        "wb-kind-api"
    )
    registered = page.locator('.wb-edge[data-topics="user.registered"]')
    assert registered.count() == 2
    assert sorted(registered.nth(i).get_attribute("data-target") for i in range(2)) == [
        "SendWelcomeEmail",
        "SetupUserAccount",
    ]
    sent = page.locator('.wb-edge[data-topics="email.sent"]:not(.wb-virtual)')
    assert (sent.get_attribute("data-source"), sent.get_attribute("data-target")) == (
        "SendWelcomeEmail",
        "LogNotification",
    )
    # The welcome email's link, to the email-verification chain: dashed, to a step drawn
    # outside this flow.
    link = page.locator('.wb-edge.wb-virtual[data-topics="email.sent"]')
    assert link.get_attribute("data-target") == "VerifyEmail"
    assert "wb-outside" in page.locator('.wb-node[data-node="VerifyEmail"]').get_attribute("class")
    assert page.locator(".wb-node.wb-fault").count() == 0
    open_end = page.locator(".wb-node.wb-kind-topic.wb-open")
    assert open_end.locator(".wb-name").text_content() == "account.setup.completed"
    assert "declared open" in open_end.text_content()
    edge = page.locator('.wb-edge[data-topics="account.setup.completed"]')
    assert edge.get_attribute("data-source") == "SetupUserAccount"
    page.click('.wb-node[data-node="SendWelcomeEmail"]')
    panel = page.locator("#wb-panel")
    panel.wait_for(state="visible")
    assert panel.locator("#wb-panel-name").inner_text() == "SendWelcomeEmail"
    config = panel.locator("#wb-panel-config").inner_text()
    assert "user.registered" in config and "send_welcome_email_step.py" in config
    assert "3 retries" in config
    shot(page, workbench, "02-flows")
    context.close()


@needs_chromium
def test_registering_through_endpoints_shows_logs_live_lights_nodes_and_traces(workbench, browser):
    """Register a user with the Endpoints form, its prefilled password kept (201): its
    log lines appear on the open Logs page without a reload, the flow's nodes light up
    and count the runs, and its trace shows the API step's bar and three bars after it."""
    context, flows = logged_in(browser, workbench)
    flows.goto(f"{workbench.base}/admin/workbench/flows/")
    wait_live(flows)
    record_lit(flows)
    logs = context.new_page()
    logs.goto(f"{workbench.base}/admin/workbench/logs/")
    wait_live(logs)
    traces = context.new_page()
    traces.goto(f"{workbench.base}/admin/workbench/traces/")
    wait_live(traces)
    endpoints = context.new_page()
    endpoints.goto(f"{workbench.base}/admin/workbench/endpoints/")
    form = endpoints.locator('.wb-endpoint[data-step="RegisterUser"]')
    body = json.loads(form.locator("textarea").input_value())
    assert set(body) == {"name", "email", "password"}, "body not prefilled from the schema"
    email = f"browser-{time.time_ns()}@example.com"
    # The prefilled password is sent as it is: the schema accepts it (8 characters or more).
    body.update(name="Browser <script>alert(1)</script>", email=email)
    form.locator("textarea").fill(json.dumps(body))
    form.locator("button[type=submit]").click()
    status = form.locator(".wb-response-status")
    status.wait_for(state="visible")
    assert status.inner_text().startswith("201")
    user_id = json.loads(form.locator(".wb-response-body").inner_text())["userId"]
    trace_id = form.locator(".wb-trace-link").inner_text()
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    shot(endpoints, workbench, "03-endpoints")
    # Its trace, opened while its steps still run (the welcome email takes a second).
    trace = context.new_page()
    trace.goto(f"{workbench.base}/admin/workbench/traces/{trace_id}/")
    trace.evaluate(
        """() => { window.tablesLoaded = 0;
        new MutationObserver(() => window.tablesLoaded++).observe(
            document.getElementById("wb-trace-tables"), {childList: true}); }"""
    )

    # The Logs page, opened before, receives the lines of the API step and the workers.
    for message in [
        "Registering new user",
        "Sending welcome email",
        "Notification logged successfully",
    ]:
        logs.locator("#wb-logs tbody tr", has_text=message).first.wait_for(timeout=15_000)
    assert logs.locator("#wb-logs script").count() == 0  # the name is text, not markup
    registering = logs.locator("#wb-logs tbody tr", has_text="Registering new user").first
    registering.locator("summary").click()
    fields = json.loads(registering.locator("pre").inner_text())
    assert fields == {"name": body["name"], "email": email}
    shot(logs, workbench, "04-logs-live")

    # The Flows page, opened before, lit up and counted each run.
    flows.wait_for_function(
        """() => ["SendWelcomeEmail", "SetupUserAccount", "LogNotification"].every(
            (s) => document.querySelector(`.wb-node[data-node="${s}"] .ok`).textContent === "1")""",
        timeout=15_000,
    )
    lit = flows.evaluate("window.lit")
    assert {"SendWelcomeEmail", "SetupUserAccount", "LogNotification"} <= set(lit["nodes"])
    assert {"user.registered", "email.sent"} <= set(lit["edges"])
    shot(flows, workbench, "05-flows-after-run")

    # The open trace page followed its runs without a reload: three events, and its
    # three deliveries succeeded. The open Traces list shows the new trace.
    trace.wait_for_function(
        """() => [...document.querySelectorAll('#wb-trace-tables .wb-status')]
            .filter((s) => s.textContent === "succeeded").length === 3""",
        timeout=15_000,
    )
    tables = trace.locator("#wb-trace-tables table")
    assert tables.nth(0).locator("tbody tr").count() == 3  # registered, email, account events
    assert trace.evaluate("window.tablesLoaded") >= 1, "the tables were never fetched again"
    shot(trace, workbench, "06-trace-live")
    row = traces.locator("#wb-traces tbody tr", has_text=trace_id)
    row.wait_for(timeout=10_000)
    assert "RegisterUser" in row.inner_text()

    # Its trace: the API step's bar, then three (email, account, notification).
    endpoints.click(".wb-trace-link")
    endpoints.wait_for_selector("#wb-timeline")
    endpoints.wait_for_function(
        """() => document.querySelectorAll('#wb-timeline .wb-bar-row[data-status="succeeded"]')
            .length === 4""",
        timeout=15_000,
    )
    labels = endpoints.locator("#wb-timeline .wb-bar-row:not(.wb-axis) .wb-bar-label")
    assert labels.all_inner_texts()[0] == "RegisterUser"
    assert sorted(labels.all_inner_texts()[1:]) == [
        "LogNotification",
        "SendWelcomeEmail",
        "SetupUserAccount",
    ]
    assert endpoints.locator("pre.wb-data", has_text=user_id).count() >= 2  # the two events
    shot(endpoints, workbench, "06-trace")

    # The Traces list finds it by the email in its event data.
    endpoints.goto(f"{workbench.base}/admin/workbench/traces/?q={email}")
    rows = endpoints.locator("#wb-traces tbody tr")
    assert rows.count() == 1 and trace_id in rows.inner_text()
    assert "RegisterUser" in rows.inner_text()
    shot(endpoints, workbench, "07-traces-search")

    endpoints.goto(f"{workbench.base}/admin/workflow/stateentry/?q={user_id}")
    assert endpoints.locator("#result_list tbody tr").count() >= 3  # users, emails, accounts
    shot(endpoints, workbench, "08-state")
    endpoints.goto(f"{workbench.base}/admin/workflow/delivery/")
    shot(endpoints, workbench, "09-deliveries")
    context.close()


@needs_chromium
def test_a_non_staff_user_is_refused_pages_and_the_websocket(workbench, browser):
    """A logged-in user who is not staff gets the admin login, not the workbench, and
    the workbench websocket closes with 4003."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{workbench.base}/admin/login/?next=/admin/workbench/flows/")
    page.fill("#id_username", "clerk")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()
    assert "/admin/login/" in page.url
    assert page.locator("#wb-graph").count() == 0
    page.goto(f"{workbench.base}/admin/workbench/logs/")
    assert "/admin/login/" in page.url
    code = page.evaluate(
        """() => new Promise((resolve) => {
            const socket = new WebSocket(`ws://${location.host}/workbench/ws/`);
            socket.onclose = (event) => resolve(event.code);
        })"""
    )
    assert code == 4003
    shot(page, workbench, "10-non-staff")
    context.close()


def websocket_close_code(page):
    return page.evaluate(
        """() => new Promise((resolve) => {
            const socket = new WebSocket(`ws://${location.host}/workbench/ws/`);
            socket.onclose = (event) => resolve(event.code);
        })"""
    )


WORKBENCH_PAGES = ["flows", "logs", "traces", "queues", "endpoints"]


@needs_chromium
def test_a_staff_user_without_permissions_gets_403_and_a_revoked_feed_closes(workbench, browser):
    """Staff status alone opens no workbench page (403, as the admin answers) and no
    websocket (4003). A user with the view permissions follows the feed until they are
    deactivated: within WORKBENCH_RECHECK (5 s) the open page's feed is closed."""
    context, page = logged_in(browser, workbench, "viewer")
    assert "Workbench" not in page.locator("#content").inner_text()
    for name in WORKBENCH_PAGES:
        response = page.goto(f"{workbench.base}/admin/workbench/{name}/")
        assert response.status == 403, name
    assert websocket_close_code(page) == 4003
    shot(page, workbench, "11-staff-without-permissions")
    context.close()

    context, page = logged_in(browser, workbench, "follower")
    page.goto(f"{workbench.base}/admin/workbench/logs/")
    wait_live(page)
    workbench.manage("shell", "-c", DEACTIVATE.format(username="follower"))
    closed = time.monotonic()
    page.wait_for_selector("#wb-live[data-state=off]", timeout=8_000)
    assert page.locator("#wb-live").inner_text() == "closed: not allowed"
    print(f"feed closed {time.monotonic() - closed:.1f} s after the deactivation was stored")
    shot(page, workbench, "12-revoked-feed")
    context.close()


DEACTIVATE = """
from django.contrib.auth.models import User
User.objects.filter(username={username!r}).update(is_active=False)
"""


@needs_chromium
def test_the_api_documents_pages_fetch_nothing_from_another_host(workbench, browser):
    """ReDoc and Swagger UI, linked from Endpoints, render with files this server serves:
    no request leaves for another host. ReDoc's footer asks for Redocly's logo at
    cdn.redoc.ly: the page's policy makes the browser refuse it (a "csp" failure,
    not a network error), and ReDoc leaves the logo out."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    answered, refused = [], []
    local = (workbench.base, "data:", "blob:")
    page.on(
        "response",
        lambda response: None if response.url.startswith(local) else answered.append(response.url),
    )
    page.on(
        "requestfailed",
        lambda request: (
            None
            if request.url.startswith(local)
            else refused.append((request.url, request.failure))
        ),
    )
    page.goto(f"{workbench.base}/api/redoc/")
    page.wait_for_selector(".redoc-wrap .api-content h1", timeout=15_000)
    page.wait_for_load_state("networkidle")
    assert page.locator('.menu-content img[alt="redocly logo"]').count() == 0
    shot(page, workbench, "13-redoc")
    page.goto(f"{workbench.base}/api/docs/")
    page.wait_for_selector("#swagger-ui .information-container", timeout=15_000)
    page.wait_for_load_state("networkidle")
    assert answered == []
    assert all(failure == "csp" for _, failure in refused), refused  # refused by the policy


def box(locator):
    found = locator.bounding_box()
    return found["x"], found["y"], found["width"], found["height"]


def beside(a, b):
    """Whether boxes a and b have no column in common."""
    return a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0]


def assert_fits(page):
    """The panel's content, its runs table included, is no wider than the panel."""
    widths = page.evaluate(
        "() => { const p = document.getElementById('wb-panel');"
        " return [p.scrollWidth, p.clientWidth]; }"
    )
    assert widths[0] <= widths[1], f"the panel overflows: {widths}"


# Last in the file: its registrations would change the run counts the tests above wait for.
@needs_chromium
def test_flows_page_cards_and_a_panel_over_the_graph_in_both_themes(workbench, browser):
    """Each card has its kind's icon (named for screen readers) and its step's
    description, an API card's too, within two lines; a noop card counts no runs; a cron
    card says its next run. A card's panel lies over the page: the graph keeps its size,
    the card stays in view, the panel's runs table fits in it; Esc, its close button or
    a click off the cards closes it. In the admin's light and dark themes."""
    if workbench.layer != "in-memory":
        pytest.skip("the page is drawn the same on each channel layer")
    workbench.post("/users/register", {"name": "Ann", "email": "ann@example.com", "password": "x"})
    body = {"name": "Ann", "email": f"ann-{time.time_ns()}@example.com", "password": "pass1234"}
    assert workbench.post("/users/register", body).status_code == 201
    context, page = logged_in(browser, workbench)
    page.goto(f"{workbench.base}/admin/workbench/flows/")
    register = page.locator('.wb-node[data-node="RegisterUser"]')
    assert register.locator(".wb-icon").get_attribute("aria-label") == "API step"
    description = register.locator(".wb-desc")
    assert description.inner_text() == "Register a new user and trigger welcome workflow"
    assert description.get_attribute("title") == description.inner_text()
    card, text = box(register.locator("rect")), box(description)
    assert card[1] < text[1] and text[1] + text[3] <= card[1] + card[3]
    assert register.locator(".wb-sub").inner_text() == "POST /users/register"

    graph = page.locator("#wb-graph")
    before = box(graph)
    page.click('.wb-node[data-node="RegisterUser"]')
    panel = page.locator("#wb-panel")
    panel.wait_for(state="visible")
    panel.locator("#wb-panel-runs tr .wb-status-refused").wait_for()
    assert box(graph) == before, "the panel moved or squeezed the graph"
    assert beside(box(panel), box(register.locator("rect"))), "the panel hides its card"
    assert_fits(page)
    shot(page, workbench, "13-flows-panel-light")
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert box(graph) == before
    page.click('.wb-node[data-node="LogNotification"]')  # at the right: the panel goes left
    assert panel.locator("#wb-panel-name").inner_text() == "LogNotification"
    assert beside(box(panel), box(page.locator('.wb-node[data-node="LogNotification"] rect')))
    page.click(".wb-close")
    panel.wait_for(state="hidden")

    page.goto(f"{workbench.base}/admin/workbench/flows/?flow=nightly")
    cron = page.locator('.wb-node[data-node="NightlyDigest"]')
    assert cron.locator(".wb-icon").get_attribute("aria-label") == "Cron step"
    assert cron.locator(".wb-sub").inner_text() == "15 3 * * *"
    assert re.fullmatch(r"next \d\d:\d\d:\d\d", cron.locator(".wb-next").inner_text())
    noop = page.locator('.wb-node[data-node="ReviewDigest"]')
    assert noop.locator(".wb-icon").get_attribute("aria-label") == "Noop step"
    assert noop.locator(".wb-counts").count() == 0
    assert cron.locator(".wb-counts").count() == 1
    shot(page, workbench, "14-flows-nightly-light")
    page.click('.wb-node[data-node="ReviewDigest"]')
    assert page.locator("#wb-panel-noop").is_visible()
    assert not page.locator("#wb-panel-runs-section").is_visible()
    page.click(".wb-canvas", position={"x": 5, "y": 5})  # off the cards: closes the panel
    panel.wait_for(state="hidden")
    page.emulate_media(color_scheme="dark")
    page.click('.wb-node[data-node="NightlyDigest"]')
    assert "UTC" in panel.locator("#wb-panel-config").inner_text()  # its next run, in full
    shot(page, workbench, "15-flows-nightly-dark")
    page.goto(f"{workbench.base}/admin/workbench/flows/")
    page.click('.wb-node[data-node="RegisterUser"]')
    panel.locator("#wb-panel-runs tr .wb-status-refused").wait_for()
    assert_fits(page)
    shot(page, workbench, "16-flows-panel-dark")
    context.close()


# Last in the file, after the test above: its registrations change the run counts.
@needs_chromium
def test_flows_page_panel_tracing_state_and_logs_tabs_live_without_navigation(workbench, browser):
    """Under the graph, a panel with Tracing, State and Logs tabs switched in the page
    (no navigation; the tab in the URL's hash): Logs is seeded with the flow's last
    lines, each with its fields inline, and a new registration's lines appear live at
    the top; its trace appears live in Tracing, and picking it shows its timeline, events
    and deliveries; a state value is shown as JSON, refused when edited into something
    not JSON, and saved as JSON; a new user's state appears live; the panel's height is
    dragged and kept. In both themes."""
    if workbench.layer != "in-memory":
        pytest.skip("the page is drawn the same on each channel layer")
    seed = {"name": "Seed", "email": f"seed-{time.time_ns()}@example.com", "password": "pass1234"}
    assert workbench.post("/users/register", seed).status_code == 201
    context, page = logged_in(browser, workbench)
    page.goto(f"{workbench.base}/admin/workbench/flows/")
    wait_live(page)
    page.evaluate("window.notReloaded = true")
    tabs = page.locator(".wb-dock-tabs [role=tab]")
    assert tabs.all_inner_texts() == ["Tracing", "State", "Logs"]
    assert page.locator("#wb-dock-tracing").is_visible()

    page.click("#wb-tab-logs")
    assert page.evaluate("location.hash") == "#logs"
    assert page.locator("#wb-dock-tracing").is_hidden()
    logs = page.locator("#wb-flow-logs")
    seeded = logs.locator("tr", has_text=seed["email"]).first  # its fields, inline
    seeded.wait_for()
    assert "email=" + seed["email"] in seeded.inner_text()

    # A registration while the page is open: its lines at the top, its trace in Tracing.
    name = "Live <script>alert(1)</script>"
    body = {"name": name, "email": f"live-{time.time_ns()}@example.com", "password": "pass1234"}
    answer = workbench.post("/users/register", body)
    assert answer.status_code == 201
    user_id = answer.json()["userId"]
    trace_id = answer.headers["X-Trace-Id"]
    logs.locator("tr", has_text="Notification logged successfully").first.wait_for(timeout=15_000)
    registering = logs.locator("tr", has_text="Registering new user").filter(has_text=body["email"])
    registering.wait_for()
    assert "name=" + name in registering.inner_text()  # text, not markup
    assert logs.locator("script").count() == 0
    assert logs.locator("tr:not([hidden])").first.get_attribute("data-id") == max(
        logs.locator("tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)"), key=int
    )
    page.select_option("#wb-log-step", "SendWelcomeEmail")
    shown = logs.locator("tr[data-id]:not([hidden]) .wb-log-step").all_inner_texts()
    assert shown and set(shown) == {"SendWelcomeEmail"}
    page.select_option("#wb-log-step", "")
    page.fill("#wb-log-filter", body["email"])
    assert logs.locator("tr[data-id]:not([hidden])").count() >= 1
    assert all(
        body["email"] in text
        for text in logs.locator("tr[data-id]:not([hidden])").all_inner_texts()
    )
    page.fill("#wb-log-filter", "")
    shot(page, workbench, "17-flows-logs-light")

    page.click("#wb-tab-tracing")
    assert page.evaluate("location.hash") == "#tracing"
    page.locator(f'#wb-flow-traces li[data-trace="{trace_id}"]').wait_for()
    page.fill("#wb-trace-search", body["email"])
    found = page.locator("#wb-flow-traces li[data-trace]")
    page.wait_for_function(
        "() => document.querySelectorAll('#wb-flow-traces li[data-trace]').length === 1"
    )
    picked = found.first.get_attribute("data-trace")
    assert picked == trace_id
    found.first.locator("button").click()
    timeline = page.locator("#wb-flow-timeline")
    page.wait_for_function(
        """() => document.querySelectorAll(
            '#wb-flow-timeline .wb-bar-row[data-status="succeeded"]').length === 4""",
        timeout=15_000,
    )
    assert timeline.locator(".wb-bar-label").first.inner_text() == "RegisterUser"
    assert timeline.locator(".wb-timeline-head a").inner_text() == picked
    # Beside its timeline, the trace's events and its deliveries as they ended.
    page.wait_for_function(
        """() => [...document.querySelectorAll('#wb-flow-trace-tables .wb-status')]
            .filter((s) => s.textContent === "succeeded").length === 3""",
        timeout=15_000,
    )
    tables = page.locator("#wb-flow-trace-tables")
    assert tables.locator("code", has_text="email.sent").count() == 1
    page.fill("#wb-trace-search", "")
    page.wait_for_function(
        "() => document.querySelectorAll('#wb-flow-traces li[data-trace]').length > 1"
    )
    # A new trace appears live at the top of the list.
    another = {
        "name": "Later",
        "email": f"later-{time.time_ns()}@example.com",
        "password": "pass1234",
    }
    assert workbench.post("/users/register", another).status_code == 201
    page.wait_for_function(
        """(picked) => document.querySelector('#wb-flow-traces li[data-trace]').dataset.trace
            !== picked && document.querySelector('#wb-flow-traces li.wb-picked') !== null""",
        arg=picked,
        timeout=15_000,
    )
    shot(page, workbench, "18-flows-tracing-light")

    page.click("#wb-tab-state")
    assert page.evaluate("location.hash") == "#state"
    page.locator('#wb-state-groups li[data-group="users"] button').click()
    page.locator(f'#wb-state-keys li[data-key="{user_id}"] button').click()
    value = page.locator("#wb-state-json")
    assert json.loads(value.inner_text())["email"] == body["email"]
    page.click("#wb-state-edit")
    page.fill("#wb-state-text", '{"name": ')
    page.click(".wb-state-form button[type=submit]")
    page.locator("#wb-state-error", has_text="Not JSON").wait_for()
    edited = {"name": "Edited", "email": body["email"], "tags": ["a", "<b>"]}
    page.fill("#wb-state-text", json.dumps(edited))
    page.click(".wb-state-form button[type=submit]")
    page.locator("#wb-state-json", has_text="Edited").wait_for()
    assert json.loads(page.locator("#wb-state-json").inner_text()) == edited

    # State follows the handlers: a new user's key appears in the open group, and its
    # value, once picked, shows it active when its account setup has run.
    fresh = {
        "name": "Fresh",
        "email": f"fresh-{time.time_ns()}@example.com",
        "password": "pass1234",
    }
    fresh_id = workbench.post("/users/register", fresh).json()["userId"]
    fresh_key = page.locator(f'#wb-state-keys li[data-key="{fresh_id}"] button')
    fresh_key.wait_for(timeout=10_000)
    fresh_key.click()
    page.locator("#wb-state-json", has_text='"status": "active"').wait_for(timeout=15_000)

    # The panel's height, dragged by its handle, kept for the next visit.
    handle = box(page.locator("#wb-dock-handle"))
    before = box(page.locator("#wb-dock"))[3]
    page.mouse.move(handle[0] + handle[2] / 2, handle[1] + handle[3] / 2)
    page.mouse.down()
    page.mouse.move(handle[0] + handle[2] / 2, handle[1] + handle[3] / 2 - 100, steps=5)
    page.mouse.up()
    after = box(page.locator("#wb-dock"))[3]
    assert abs(after - before - 100) <= 2, (before, after)
    assert page.evaluate("window.notReloaded") is True, "a tab or an action loaded a page"
    shot(page, workbench, "19-flows-state-light")

    page.emulate_media(color_scheme="dark")
    page.reload()
    assert page.evaluate("location.hash") == "#state"
    assert abs(box(page.locator("#wb-dock"))[3] - after) <= 2
    page.locator('#wb-state-groups li[data-group="users"] button').click()
    page.locator(f'#wb-state-keys li[data-key="{user_id}"] button').click()
    shot(page, workbench, "20-flows-state-dark")
    page.click("#wb-tab-tracing")
    page.locator("#wb-flow-traces li[data-trace] button").first.click()
    page.locator("#wb-flow-timeline .wb-bar-row").first.wait_for()
    shot(page, workbench, "21-flows-tracing-dark")
    page.click("#wb-tab-logs")
    shot(page, workbench, "22-flows-logs-dark")
    context.close()


def a_run_finished(page):
    """Tell the page what the live feed tells it when a handler's run ends."""
    page.evaluate(
        """() => document.dispatchEvent(new CustomEvent("wb:message",
            {detail: {kind: "run", finishedAt: new Date().toISOString()}}))"""
    )


def held_request(page, held, count, timeout=10):
    """The ``count``-th request a route of ``page`` holds in ``held``, once it is there."""
    deadline = time.monotonic() + timeout
    while len(held) < count:
        assert time.monotonic() < deadline, f"request {count} never came"
        page.wait_for_timeout(20)
    return held[count - 1]


def settled(page, ms=100):
    """Let the page act on what it was just answered."""
    page.evaluate(f"() => new Promise((done) => setTimeout(done, {ms}))")


@needs_chromium
def test_state_answers_that_come_back_late_do_not_undo_a_pick_or_a_save(workbench, browser):
    """The State tab fetches a group's keys when one is picked and again, live, when a
    run finishes; the answers can come back out of order. An answer read before a
    group was picked does not replace the picked key's value (or its edit) with the
    placeholder, and one read before a value was saved does not put back the old value."""
    if workbench.layer != "in-memory":
        pytest.skip("the page is drawn the same on each channel layer")
    body = {"name": "Late", "email": f"late-{time.time_ns()}@example.com", "password": "pass1234"}
    user_id = workbench.post("/users/register", body).json()["userId"]
    context, page = logged_in(browser, workbench)
    page.goto(f"{workbench.base}/admin/workbench/flows/#state")
    state_url = page.locator("#wb-dock-state").get_attribute("data-url")
    held = []
    page.route(f"**{state_url}?group=users", lambda route: held.append(route))

    # Picked (request 1, held), then a live fetch (request 2) answers first.
    page.locator('#wb-state-groups li[data-group="users"] button').click()
    picked = held_request(page, held, 1)
    a_run_finished(page)
    held_request(page, held, 2).continue_()
    key = page.locator(f'#wb-state-keys li[data-key="{user_id}"] button')
    key.click()
    page.click("#wb-state-edit")
    picked.continue_()  # the older answer, last
    settled(page)
    assert page.locator("#wb-state-text").is_visible(), "the edit was replaced"

    # A live fetch read before the save (its answer held until the save has shown).
    a_run_finished(page)
    stale = held_request(page, held, 3)
    before_save = page.request.get(f"{workbench.base}{state_url}?group=users").text()
    assert "Saved" not in before_save
    edited = {"name": "Saved", "email": body["email"]}
    page.fill("#wb-state-text", json.dumps(edited))
    page.click(".wb-state-form button[type=submit]")
    page.locator("#wb-state-json", has_text="Saved").wait_for()
    stale.fulfill(status=200, content_type="application/json", body=before_save)
    settled(page)
    assert json.loads(page.locator("#wb-state-json").inner_text()) == edited
    context.close()


@needs_chromium
def test_a_trace_search_is_not_undone_by_a_live_answer_read_before_it(workbench, browser):
    """Tracing's list is fetched again, live, as runs finish, and when a search is
    typed; a live answer (every trace) that comes back after the search's answer does
    not replace the traces found."""
    if workbench.layer != "in-memory":
        pytest.skip("the page is drawn the same on each channel layer")
    emails = [f"found-{time.time_ns()}@example.com", f"other-{time.time_ns()}@example.com"]
    for email in emails:
        body = {"name": "Found", "email": email, "password": "pass1234"}
        assert workbench.post("/users/register", body).status_code == 201
    context, page = logged_in(browser, workbench)
    page.goto(f"{workbench.base}/admin/workbench/flows/#tracing")
    page.wait_for_function(
        "() => document.querySelectorAll('#wb-flow-traces li[data-trace]').length > 1"
    )
    held = []
    page.route("**/traces/?flow=*&q=", lambda route: held.append(route))
    a_run_finished(page)
    held_request(page, held, 1)
    page.fill("#wb-trace-search", emails[0])
    page.wait_for_function(
        "() => document.querySelectorAll('#wb-flow-traces li[data-trace]').length === 1"
    )
    held[0].continue_()
    settled(page)
    assert page.locator("#wb-flow-traces li[data-trace]").count() == 1
    context.close()


@needs_chromium
def test_the_traces_page_keeps_the_newest_answer_when_refreshes_come_back_out_of_order(
    workbench, browser
):
    """The Traces page's rows are fetched again as runs finish; an answer read before a
    new trace began, come back after a newer answer, does not take the new trace away."""
    if workbench.layer != "in-memory":
        pytest.skip("the page is drawn the same on each channel layer")
    context, page = logged_in(browser, workbench)
    page.goto(f"{workbench.base}/admin/workbench/traces/")
    rows_url = page.locator("#wb-traces").get_attribute("data-url")
    before = page.request.get(f"{workbench.base}{rows_url}").text()
    held = []

    def hold_the_first(route):
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(f"**{rows_url}", hold_the_first)
    body = {"name": "New", "email": f"new-{time.time_ns()}@example.com", "password": "pass1234"}
    answer = workbench.post("/users/register", body)
    new_trace = answer.headers["X-Trace-Id"]
    assert new_trace not in before
    held_request(page, held, 1)  # the first refresh, on the new trace's first run
    a_run_finished(page)
    row = page.locator(f'#wb-traces tbody a[href*="{new_trace}"]')
    row.first.wait_for(timeout=15_000)  # a later refresh drew it
    held[0].fulfill(status=200, content_type="text/html", body=before)
    settled(page)
    assert row.count() >= 1
    context.close()
