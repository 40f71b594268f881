"""The Queues page in a real browser (Debian's Chromium driven by Playwright), against
runserver and its real workers with the probe app's steps: the counts change live as a
step runs, retries and dies; the dead letter is listed with its traceback and replayed
with its button; a trace is cancelled from the form; a step's queue is paused, holding
its deliveries, and resumed.

Screenshots are saved in test-artifacts/screenshots/queues-*.png (not committed).
"""

import json
import uuid

import pytest

from bench.stack import Stack
from tests.e2e.browsing import SHOTS, launched_chromium, needs_chromium
from tests.e2e.probing import deliveries, emit, wait_for

pytestmark = pytest.mark.e2e
PASSWORD = "queues-pass-123"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CREATE_ADMIN = """
from django.contrib.auth.models import User
User.objects.create_superuser("admin", "admin@example.com", {password!r})
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """runserver with the probe steps, and a superuser 'admin'."""
    workdir = tmp_path_factory.mktemp("queues")
    env = {"DJANGO_SETTINGS_MODULE": "tests.e2e.settings", "PROBE_DIR": str(workdir)}
    stack = Stack(workdir, env=env, reload=False)
    stack.migrate()
    stack.manage("shell", "-c", CREATE_ADMIN.format(password=PASSWORD))
    with stack:
        yield stack


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as launched:
        yield launched


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"queues-{name}.png"), full_page=True)


@needs_chromium
def test_counts_change_live_as_a_step_retries_and_dies_and_its_dead_letter_is_replayed(
    probe, browser
):
    """On the open page, without a reload: a delayed delivery counts as pending, a slow
            one as running, Flaky (failing its first 4 attempts, 3 retries after 0.5, 1 and 2 s)
            as retrying, then dead. Reloaded, its dead letter shows the traceback of attempt 4;
            Replay runs it again (attempt 5 succeeds) and says so; Edit & replay runs Fragile on
    edited data in the same trace; the form cancels a trace; Pause
        holds Counter's new deliveries while the workers run, and Resume lets them run."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{probe.base}/admin/login/?next=/admin/workbench/queues/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#wb-queues")
    page.wait_for_selector("#wb-live[data-state=on]", timeout=10_000)
    page.evaluate("window.notReloaded = true")
    expect = sync_api.expect

    def cell(step, count):
        return page.locator(f'#wb-queues tr[data-step="{step}"] [data-count="{count}"]')

    assert cell("Flaky", "dead").inner_text() == "0"
    assert page.locator("#wb-queues tr[data-step=ProbeEmit]").count() == 0  # an API step
    item = uuid.uuid4().hex
    delayed = emit(probe, "probe.count", [{"n": 1}], delay=120)
    emit(probe, "probe.slow", [{"id": item, "seconds": 3}])
    trace = emit(probe, "probe.flaky", [{"id": item, "fail_times": 4}])

    expect(cell("Counter", "pending")).to_have_text("1", timeout=5_000)
    expect(cell("Slow", "running")).to_have_text("1", timeout=5_000)
    expect(cell("Flaky", "retrying")).to_have_text("1", timeout=5_000)
    shot(page, "01-retrying")
    expect(cell("Flaky", "dead")).to_have_text("1", timeout=15_000)
    expect(cell("Flaky", "retrying")).to_have_text("0")
    expect(cell("Slow", "running")).to_have_text("0", timeout=5_000)
    expect(page.locator("#wb-queues-stale")).to_be_visible()  # the list is older than it
    assert page.evaluate("window.notReloaded"), "the page was reloaded"
    shot(page, "02-dead-live")

    page.reload()
    letter = page.locator("#wb-dead-flaky tr[data-delivery]")
    expect(letter).to_have_count(1)
    traceback = letter.locator(".wb-traceback pre").inner_text()
    assert traceback.startswith("Traceback (most recent call last):")
    assert '\n  File "' in traceback and "\n    raise RuntimeError(" in traceback  # indented
    assert traceback.rstrip().endswith("RuntimeError: failing on purpose, attempt 4")
    assert letter.locator(".wb-error").inner_text() == "RuntimeError: failing on purpose, attempt 4"
    shot(page, "03-dead-letter")

    (dead,) = deliveries(probe, trace, "Flaky")
    letter.get_by_role("button", name="Replay", exact=True).click()
    message = page.locator(".messagelist .success")
    expect(message).to_contain_text(f"Replayed delivery {dead['id']} (Flaky) as delivery")
    found = wait_for(
        lambda: [d for d in deliveries(probe, trace, "Flaky") if d["status"] == "succeeded"],
        10,
        "the replay succeeded",
        probe,
    )
    assert found[0]["replay_of"] == dead["id"]
    expect(cell("Flaky", "dead")).to_have_text("0")
    expect(page.locator("#wb-no-dead")).to_be_visible()
    shot(page, "04-replayed")

    # Edit & replay: Fragile dies while its item's fault is there; replayed on an item
    # without one, it succeeds, in the same trace, on a new event linked to the first.
    (probe.workdir / f"fault-{item}").touch()
    broken = emit(probe, "probe.fragile", [{"id": item}])
    expect(cell("Fragile", "dead")).to_have_text("1", timeout=10_000)
    page.reload()
    letter = page.locator("#wb-dead-fragile tr[data-delivery]")
    letter.locator(".wb-edit summary").click()
    letter.locator("textarea").fill(f'{{"id": "{item}-fixed"}}')
    shot(page, "05-edit")
    letter.locator("button", has_text="Replay on this data").click()
    expect(message).to_contain_text("on edited data as delivery")
    (replayed,) = wait_for(
        lambda: [d for d in deliveries(probe, broken, "Fragile") if d["status"] == "succeeded"],
        10,
        "the edited replay succeeded",
        probe,
    )
    assert replayed["attempts"] == 1 and replayed["replay_of"] is not None
    ((data, edited_from),) = probe.query(
        "SELECT data, edited_from_id FROM workflow_event WHERE id = ?", (replayed["event"],)
    )
    assert json.loads(data) == {"id": f"{item}-fixed"} and edited_from is not None

    page.fill("#wb-cancel-trace-id", delayed)
    page.click("#wb-cancel-trace button")
    expect(message).to_have_text(
        f"Cancelled 1 pending and 0 running deliveries of trace {delayed}."
    )
    expect(cell("Counter", "pending")).to_have_text("0")

    # Pause holds Counter's deliveries with the workers running; Resume lets them run.
    row = page.locator('#wb-queues tr[data-step="Counter"]')
    row.locator("button", has_text="Pause").click()
    expect(message).to_have_text("Paused Counter: its deliveries wait until it is resumed.")
    expect(cell("Counter", "queue")).to_have_text("paused")
    held = emit(probe, "probe.count", [{"n": 1}, {"n": 2}])
    expect(cell("Counter", "pending")).to_have_text("2", timeout=5_000)
    page.wait_for_timeout(1500)  # six ticks of the sweeper: nothing runs
    assert [d["status"] for d in deliveries(probe, held, "Counter")] == ["pending"] * 2
    expect(cell("Counter", "pending")).to_have_text("2")
    page.emulate_media(color_scheme="dark")
    shot(page, "06-paused-dark")
    row.locator("button", has_text="Resume").click()
    expect(message).to_have_text("Resumed Counter: its waiting deliveries run.")
    expect(cell("Counter", "pending")).to_have_text("0", timeout=5_000)
    wait_for(
        lambda: [d["status"] for d in deliveries(probe, held, "Counter")] == ["succeeded"] * 2,
        10,
        "Counter's held deliveries ran",
        probe,
    )
    context.close()
