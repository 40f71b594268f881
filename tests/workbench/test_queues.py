"""The Queues page: per event and cron step, its deliveries pending, retrying, running
and dead, with the oldest waiting age (also as JSON, which the page fetches again);
each step's dead letters with the traceback of their last attempt; replay and cancel,
for users with the change permission on deliveries."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from tests.workbench.conftest import staff_user
from workbench import permissions
from workbench.views import queues
from workflow import pauses
from workflow.models import Delivery, Event, Run
from workflow.steps import ApiStep, CronStep, EventStep

pytestmark = pytest.mark.django_db
VIEWS = ("workflow.view_delivery", "workflow.view_run")
CHANGE = "workflow.change_delivery"
COUNTS = ("pending", "retrying", "running", "dead")
TRACEBACK = """Traceback (most recent call last):
  File "steps/ship_step.py", line 12, in handler
    carrier.send(parcel)
  File "carriers.py", line 40, in send
    raise ConnectionError("carrier <down>")
ConnectionError: carrier <down>"""


def url(name):
    return reverse(f"admin:{name}")


def trace(n):
    return f"{n:032x}"


def handler(input, ctx):
    return None


def cron_handler(ctx):
    return None


def api_handler(request, ctx):
    return {"status": 200, "body": {}}


@pytest.fixture
def queued(steps):
    """Three steps with queues (two event steps and a cron step) and an API step."""
    steps.add(ApiStep(name="Place", method="POST", path="/p", emits=["placed"]), api_handler)
    steps.add(EventStep(name="Ship", subscribes=["placed"]), handler)
    steps.add(EventStep(name="Bill", subscribes=["placed"]), handler)
    steps.add(CronStep(name="Nightly", cron="0 3 * * *"), cron_handler)
    return steps


def delivery(step="Ship", n=1, **fields):
    return Delivery.objects.create(step_name=step, trace_id=trace(n), **fields)


def dead(step="Ship", n=1, **fields):
    fields.setdefault("attempts", 3)
    fields.setdefault("finished_at", timezone.now())
    fields.setdefault("last_error", "ConnectionError: carrier <down>")
    return delivery(step, n, status="dead", **fields)


@pytest.fixture
def queued_page(client, queued):
    """The Queues page's HTML, as a user who may see it and act, each time called."""
    client.force_login(staff_user("operator", *VIEWS, CHANGE))

    def get():
        response = client.get(url("workbench_queues"))
        assert response.status_code == 200
        return response.content.decode()

    return get


def act(client, name, data):
    """POST an action; it returns to the Queues page: the messages shown there."""
    response = client.post(url(name), data, follow=True)
    assert response.redirect_chain == [(url("workbench_queues"), 302)]
    shown = [str(message) for message in response.context["messages"]]
    for message in shown:
        assert escape(message) in response.content.decode()
    return shown


def test_counts_each_bucket_per_step_in_three_queries(queued_page, django_assert_num_queries):
    """Pending: due now (new, or a retry past its backoff) plus new ones delayed;
    retrying: failed, waiting for the backoff; running; dead: dead letters not replayed
    (nor since succeeded). Finished ones, API steps and unknown steps are left out;
    the oldest waiting age is that of the oldest due pending delivery."""
    now = timezone.now()
    delivery(due_at=now - timedelta(seconds=10))  # due for 10 s: the oldest waiting
    delivery(attempts=1, due_at=now - timedelta(seconds=2))  # a retry past its backoff
    delivery(due_at=now + timedelta(minutes=5))  # emitted with a delay: pending
    delivery(attempts=1, due_at=now + timedelta(seconds=5))  # retrying
    delivery(attempts=2, due_at=now + timedelta(seconds=30))  # retrying
    delivery(status="running", attempts=1)
    dead(n=2)
    dead(n=3)
    replayed = dead(n=4)
    delivery(n=4, status="succeeded", replay_of=replayed, attempts=1)
    event = Event.objects.create(topic="placed", data={}, trace_id=trace(5))
    dead(n=5, event=event)  # its step succeeded since for the same event: not a dead letter
    delivery(n=5, event=event, status="succeeded", attempts=1)
    delivery(status="cancelled")
    delivery("Bill", status="running", attempts=1)
    dead("Nightly", n=6)
    delivery("Place", status="pending")  # not a step with a queue
    delivery("Gone", status="pending")  # not in the registry

    with django_assert_num_queries(3):  # live ones, dead letters, paused queues
        rows = queues.queue_rows(queues.queued_steps(), now)
    assert [row["step"] for row in rows] == ["Bill", "Nightly", "Ship"]
    counted = {row["step"]: {k: row[k] for k in COUNTS} for row in rows}
    assert counted == {
        "Bill": {"pending": 0, "retrying": 0, "running": 1, "dead": 0},
        "Nightly": {"pending": 0, "retrying": 0, "running": 0, "dead": 1},
        "Ship": {"pending": 3, "retrying": 2, "running": 1, "dead": 2},
    }
    ship = rows[2]
    assert ship["type"] == "event" and rows[1]["type"] == "cron"
    assert ship["oldestSeconds"] == 10.0 and ship["oldest"] == "10.0 s"
    assert rows[0]["oldestSeconds"] is None and rows[0]["oldest"] == ""

    html = queued_page()
    row = re.search(r'<tr data-step="Ship".*?</tr>', html, re.S)[0]
    cells = dict(re.findall(r'data-count="(\w+)">([^<]*)<', row))
    assert cells["pending"] == "3" and cells["retrying"] == "2" and cells["dead"] == "2"
    assert re.fullmatch(r"1\d\.\d s", cells["oldest"])  # 10 s and the time to answer
    assert '<tr data-step="Place"' not in html and '<tr data-step="Gone"' not in html
    assert 'title="Waiting to run: due now' in html  # what each column counts


def test_ages_read_as_seconds_minutes_hours_and_days():
    assert [queues.age(s) for s in (0, 1.23, 59.9, 180, 3599, 9000, 3 * 86400)] == [
        "0.0 s",
        "1.2 s",
        "59.9 s",
        "3 min",
        "59 min",
        "2.5 h",
        "3.0 d",
    ]


def test_the_json_endpoint_returns_the_rows(queued, staff_client):
    delivery("Bill", attempts=1, due_at=timezone.now() + timedelta(seconds=5))
    dead("Bill", n=2)
    response = staff_client.get(url("workbench_queue_counts"))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    bill = response.json()["rows"][0]
    assert bill == {
        "step": "Bill",
        "type": "event",
        "pending": 0,
        "retrying": 1,
        "running": 0,
        "dead": 1,
        "oldestSeconds": None,
        "oldest": "",
        "paused": False,
    }
    assert [row["step"] for row in response.json()["rows"]] == ["Bill", "Nightly", "Ship"]


def test_dead_letters_show_the_traceback_of_the_last_attempt_with_its_indentation(
    queued_page,
):
    """Each step with dead letters lists them, newest first, with the error and the
    last attempt's traceback in a <pre>, escaped, its indentation kept; the 20 newest."""
    letter = dead(attempts=2)
    Run.objects.create(
        step_name="Ship", trace_id=trace(1), delivery=letter, attempt=1, traceback="first try"
    )
    Run.objects.create(
        step_name="Ship", trace_id=trace(1), delivery=letter, attempt=2, traceback=TRACEBACK
    )
    html = queued_page()
    section = re.search(
        r'<details class="wb-dead" id="wb-dead-ship".*?</details>\s*</td>', html, re.S
    )
    assert section, "no dead letters section for Ship"
    shown = (
        "<pre>Traceback (most recent call last):\n"
        "  File &quot;steps/ship_step.py&quot;, line 12, in handler\n"
        "    carrier.send(parcel)\n"
        "  File &quot;carriers.py&quot;, line 40, in send\n"
        "    raise ConnectionError(&quot;carrier &lt;down&gt;&quot;)\n"
        "ConnectionError: carrier &lt;down&gt;</pre>"
    )
    assert shown in html
    assert "first try" not in html
    assert "ConnectionError: carrier &lt;down&gt;</div>" in html  # the last error
    assert f'href="{reverse("admin:workbench_trace", args=[trace(1)])}"' in html
    assert "<script" not in section[0] and "carrier <down>" not in html

    for n in range(2, 24):
        dead(n=n)
    html = queued_page()
    listed = re.findall(r'<tr data-delivery="(\d+)"', html)
    assert len(listed) == 20 and listed == sorted(listed, key=int, reverse=True)
    assert "23 dead" in html and "the newest 20 below" in html


def test_the_dead_letters_of_a_few_steps_are_open_of_many_closed(queued, queued_page):
    dead("Ship")
    dead("Bill", n=2)
    assert re.search(
        r'<details class="wb-dead" id="wb-dead-ship" data-step="Ship" open>', queued_page()
    )
    queued.add(EventStep(name="Audit", subscribes=["placed"]), handler)
    queued.add(EventStep(name="Pack", subscribes=["placed"]), handler)
    dead("Audit", n=3)
    dead("Pack", n=4)
    html = queued_page()
    assert html.count('<details class="wb-dead"') == 4
    assert not re.search(r'<details class="wb-dead"[^>]* open>', html)


def test_replay_from_the_page_makes_a_replay_and_says_so(queued, client):
    """Replay posts the dead letter's id: a new delivery of it in its trace, and a
    message on the page it returns to; a second replay of it is refused, saying why."""
    client.force_login(staff_user("operator", *VIEWS, CHANGE))
    letter = dead()
    shown = act(client, "workbench_queue_replay", {"delivery": letter.pk})
    again = Delivery.objects.get(replay_of=letter)
    assert (again.status, again.trace_id, again.step_name) == ("pending", trace(1), "Ship")
    assert shown == [f"Replayed delivery {letter.pk} (Ship) as delivery {again.pk}."]

    (refused,) = act(client, "workbench_queue_replay", {"delivery": letter.pk})
    assert Delivery.objects.filter(replay_of=letter).count() == 1
    assert refused.startswith(f"Not replayed: delivery {letter.pk} (Ship) was already replayed")
    assert client.post(url("workbench_queue_replay"), {"delivery": "x"}).status_code == 404
    assert client.get(url("workbench_queue_replay")).status_code == 405


def test_cancel_from_the_page_cancels_the_trace(queued, client):
    """A dead letter whose trace still has work shows Cancel trace; posting it cancels
    the trace's pending and running deliveries; the form above takes any trace id."""
    client.force_login(staff_user("operator", *VIEWS, CHANGE))
    dead(n=1)
    waiting = delivery("Bill", n=1, attempts=1, due_at=timezone.now() + timedelta(seconds=9))
    running = delivery("Nightly", n=1, status="running", attempts=1)
    dead(n=2)
    html = client.get(url("workbench_queues")).content.decode()
    assert html.count('<input type="hidden" name="trace" value="') == 1
    assert f'<input type="hidden" name="trace" value="{trace(1)}">' in html
    assert 'id="wb-cancel-trace"' in html

    shown = act(client, "workbench_queue_cancel", {"trace": trace(1)})
    assert shown == [f"Cancelled 1 pending and 1 running deliveries of trace {trace(1)}."]
    waiting.refresh_from_db()
    running.refresh_from_db()
    assert (waiting.status, running.status) == ("cancelled", "cancelled")
    assert act(client, "workbench_queue_cancel", {"trace": trace(1)}) == [
        f"Nothing to cancel: trace {trace(1)} has no pending or running delivery."
    ]
    assert act(client, "workbench_queue_cancel", {"trace": "nope"}) == [
        "Not a trace id: a trace id is 32 hexadecimal digits."
    ]


@pytest.mark.parametrize("name", ["workbench_queues", "workbench_queue_counts"])
def test_the_page_and_its_json_need_the_view_permissions(queued, client, name):
    client.force_login(staff_user("bare"))
    assert client.get(url(name)).status_code == 403
    for perm in VIEWS:
        client.force_login(staff_user(f"only-{perm}", perm))
        assert client.get(url(name)).status_code == 403, perm
    client.force_login(staff_user("viewer", *VIEWS))
    assert client.get(url(name)).status_code == 200
    assert permissions.PAGES["queues"] == VIEWS


def test_a_viewer_without_change_delivery_sees_no_buttons_and_may_not_act(queued, client):
    """The buttons are not shown, and a POST is refused (403) and changes nothing."""
    letter = dead(n=1)
    waiting = delivery(n=1)
    client.force_login(staff_user("viewer", *VIEWS))
    html = client.get(url("workbench_queues")).content.decode()
    assert f'<tr data-delivery="{letter.pk}"' in html  # the dead letter is listed
    assert "Replay</button>" not in html and "Cancel trace</button>" not in html
    assert url("workbench_queue_replay") not in html and url("workbench_queue_cancel") not in html
    assert client.post(url("workbench_queue_replay"), {"delivery": letter.pk}).status_code == 403
    assert client.post(url("workbench_queue_cancel"), {"trace": trace(1)}).status_code == 403
    pause = {"step": "Ship", "action": "pause"}
    assert "Pause</button>" not in html and url("workbench_queue_pause") not in html
    assert client.post(url("workbench_queue_pause"), pause).status_code == 403
    assert pauses.paused() == {}
    assert not Delivery.objects.filter(replay_of=letter).exists()
    waiting.refresh_from_db()
    assert waiting.status == "pending"

    client.force_login(staff_user("operator", *VIEWS, CHANGE))
    html = client.get(url("workbench_queues")).content.decode()
    assert "Replay</button>" in html and "Cancel trace</button>" in html


def test_pause_and_resume_a_steps_queue_from_the_page(queued, client):
    """Pause holds the step's queue (workflow.pauses), by the user; the row then says
    paused and offers Resume, and the JSON says so; Resume lets it run again."""
    client.force_login(staff_user("operator", *VIEWS, CHANGE))
    shown = act(client, "workbench_queue_pause", {"step": "Ship", "action": "pause"})
    assert shown == ["Paused Ship: its deliveries wait until it is resumed."]
    assert pauses.paused()["Ship"].paused_by == "operator"
    html = client.get(url("workbench_queues")).content.decode()
    row = re.search(r'<tr data-step="Ship".*?</tr>', html, re.S)[0]
    assert 'data-count="queue">paused<' in row and "Resume</button>" in row
    rows = client.get(url("workbench_queue_counts")).json()["rows"]
    assert {row["step"]: row["paused"] for row in rows} == {
        "Bill": False,
        "Nightly": False,
        "Ship": True,
    }
    assert act(client, "workbench_queue_pause", {"step": "Ship", "action": "pause"}) == [
        "Ship was already paused."
    ]
    shown = act(client, "workbench_queue_pause", {"step": "Ship", "action": "resume"})
    assert shown == ["Resumed Ship: its waiting deliveries run."]
    assert pauses.paused() == {}
    for bad in ({"step": "Place", "action": "pause"}, {"step": "Ship", "action": "stop"}):
        assert client.post(url("workbench_queue_pause"), bad).status_code == 404


def test_edit_and_replay_runs_the_step_on_edited_data_in_the_same_trace(queued, client):
    """The dead letter's form holds its event's data; posting edited JSON makes a new
    event in the same trace, linked to the original, delivered to that step only, and
    the page says so. Text that is not JSON, or a letter already replayed, is shown
    again in its form with the reason (400), and nothing is recorded."""
    client.force_login(staff_user("operator", *VIEWS, CHANGE))
    event = Event.objects.create(topic="placed", data={"sku": "A-1", "qty": 0}, trace_id=trace(1))
    letter = dead(event=event)
    html = client.get(url("workbench_queues")).content.decode()
    form = re.search(r'<details class="wb-edit".*?</details>', html, re.S)[0]
    assert escape('"qty": 0') in form and f'name="delivery" value="{letter.pk}"' in form

    text = '{"sku": "A-1", "qty": 2 '  # unfinished
    response = client.post(url("workbench_queue_edit"), {"delivery": letter.pk, "data": text})
    assert response.status_code == 400
    html = response.content.decode()
    assert f"{escape(text)}</textarea>" in html  # what was typed, kept
    assert "Not JSON: Expecting &#x27;,&#x27; delimiter at line 1, column 25." in html
    assert re.search(r'<details class="wb-edit" open>', html)
    assert Event.objects.count() == 1 and not Delivery.objects.filter(replay_of=letter).exists()

    shown = act(client, "workbench_queue_edit", {"delivery": letter.pk, "data": '{"qty": 2}'})
    again = Delivery.objects.get(replay_of=letter)
    edited = again.event
    assert shown == [
        f"Replayed delivery {letter.pk} (Ship) on edited data as delivery {again.pk} "
        f"(event {edited.pk}, in the same trace)."
    ]
    assert (edited.data, edited.edited_from, edited.trace_id) == ({"qty": 2}, event, trace(1))
    assert (again.step_name, again.status) == ("Ship", "pending")

    response = client.post(url("workbench_queue_edit"), {"delivery": letter.pk, "data": "{}"})
    assert response.status_code == 400
    assert "Not replayed: delivery" in response.content.decode()
    assert Event.objects.count() == 2

    client.force_login(staff_user("viewer", *VIEWS))
    html = client.get(url("workbench_queues")).content.decode()
    assert "wb-edit" not in html
    response = client.post(url("workbench_queue_edit"), {"delivery": letter.pk, "data": "{}"})
    assert response.status_code == 403
