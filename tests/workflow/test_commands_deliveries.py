"""``manage.py deliveries``: what ran and what failed, newest first, one line each."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from workflow import bus
from workflow.models import Delivery
from workflow.replay import replay
from workflow.steps import CronStep, EventStep
from workflow.ticker import fire_cron

pytestmark = pytest.mark.django_db
Status = Delivery.Status


def handler(input, ctx):
    pass


def deliveries(*args):
    out = StringIO()
    call_command("deliveries", *args, stdout=out)
    return out.getvalue().splitlines()


def finish(delivery, status, attempts=1, error=""):
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status, attempts=attempts, last_error=error, finished_at=timezone.now()
    )
    delivery.refresh_from_db()
    return delivery


@pytest.fixture
def history(steps):
    """Ship succeeded, Bill died (a traceback as its last error), and a second order
    is pending for both."""
    steps.add(EventStep(name="Ship", subscribes=["order.placed"]), handler)
    steps.add(EventStep(name="Bill", subscribes=["order.placed"]), handler)
    first = bus.emit("order.placed", {"orderId": 1})
    ship, bill = first.deliveries.order_by("pk")
    traceback = 'Traceback (most recent call last):\n  File "x.py"\nRuntimeError: card declined\n'
    finish(ship, Status.SUCCEEDED)
    finish(bill, Status.DEAD, attempts=4, error=traceback)
    second = bus.emit("order.placed", {"orderId": 2})
    return {"first": first, "second": second, "ship": ship, "bill": bill}


def cells(line):
    return line.split()


def test_lists_every_delivery_newest_first_with_status_attempts_topic_and_error(history):
    """Header, then one line per delivery: id, step, status, attempts, topic, event,
    short trace and the last error's last line."""
    lines = deliveries()
    header = ["id", "step", "status", "attempts", "topic", "event", "trace", "last", "error"]
    assert lines[0].split() == header
    first, second = history["first"], history["second"]
    ids = [int(cells(line)[0]) for line in lines[1:]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 4
    bill = next(line for line in lines if cells(line)[0] == str(history["bill"].pk))
    assert cells(bill) == [
        str(history["bill"].pk),
        "Bill",
        "dead",
        "4",
        "order.placed",
        str(first.pk),
        first.trace_id[:8],
        "RuntimeError:",
        "card",
        "declined",
    ]
    pending = [cells(line) for line in lines[1:3]]
    assert {(c[1], c[2], c[3], c[5]) for c in pending} == {
        ("Ship", "pending", "0", str(second.pk)),
        ("Bill", "pending", "0", str(second.pk)),
    }


def test_columns_line_up(history):
    lines = deliveries()
    starts = {line.index(cells(line)[4]) for line in lines}  # the topic column
    assert len(starts) == 1


def test_dead_lists_only_dead_letters(history):
    lines = deliveries("--dead")
    assert [cells(line)[:3] for line in lines[1:]] == [[str(history["bill"].pk), "Bill", "dead"]]


@pytest.mark.parametrize(
    "args, expected",
    [
        (("--step", "Ship"), {("Ship", "pending"), ("Ship", "succeeded")}),
        (("--status", "succeeded"), {("Ship", "succeeded")}),
        (("--step", "Bill", "--status", "pending"), {("Bill", "pending")}),
    ],
)
def test_filters_by_step_and_status(history, args, expected):
    assert {tuple(cells(line)[1:3]) for line in deliveries(*args)[1:]} == expected


def test_filters_by_trace(history):
    lines = deliveries("--trace", history["second"].trace_id)
    assert {cells(line)[5] for line in lines[1:]} == {str(history["second"].pk)}


def test_filters_by_the_first_characters_of_a_trace_as_it_prints_them(history):
    """--trace takes the 8 characters the trace column shows, as `cancel` does."""
    second = history["second"]
    lines = deliveries("--trace", second.trace_id[:8])
    assert {cells(line)[5] for line in lines[1:]} == {str(second.pk)}
    assert len(lines) == 3


def test_a_trace_prefix_of_several_traces_is_an_error_naming_a_few(steps):
    """A prefix that begins five traces: an error naming the first three (and that there
    are more) and asking for more characters; an unknown prefix says no trace begins so."""
    steps.add(EventStep(name="Ship", subscribes=["order.placed"]), handler)
    traces = [f"abcdef0{n}" + "0" * 24 for n in range(5)]
    for trace in traces:
        bus.emit("order.placed", {}, trace_id=trace)
    named = ", ".join(traces[:3])
    with pytest.raises(CommandError) as caught:
        deliveries("--trace", "abcdef")
    assert str(caught.value) == (
        f"'abcdef' begins more than one trace ({named}, …); give more of its characters"
    )
    with pytest.raises(CommandError, match="no trace begins with 'abcdef9'"):
        deliveries("--trace", "abcdef9")
    assert len(deliveries("--trace", "abcdef03")) == 2


def test_limit_shows_the_newest_and_says_how_many_more(history):
    lines = deliveries("--limit", "1")
    assert len(lines) == 3
    assert cells(lines[1])[0] == str(Delivery.objects.order_by("-pk").first().pk)
    assert lines[2] == "(1 of 4; --limit 4 shows them all)"


def test_a_replay_says_what_it_replays(history):
    again = replay(history["bill"])
    line = deliveries("--limit", "1")[1]
    assert cells(line)[:5] == [str(again.pk), "Bill", "pending", "(replay", "of"]
    assert f"(replay of {history['bill'].pk})" in line


def test_a_cron_delivery_shows_cron_as_its_topic(steps):
    steps.add(CronStep(name="Tick", cron="* * * * *"), lambda ctx: None)
    fire_cron(steps.get("Tick"), timezone.now())
    assert cells(deliveries()[1])[1:6] == ["Tick", "pending", "0", "cron", "-"]


def test_no_deliveries_says_so(steps):
    assert deliveries() == ["no deliveries"]


def test_a_known_step_with_no_deliveries_says_so(history):
    Delivery.objects.filter(step_name="Ship").delete()
    assert deliveries("--step", "Ship") == ["no deliveries"]


def test_an_unknown_step_is_an_error_naming_the_steps(history):
    with pytest.raises(
        CommandError, match="no step named 'Shipp' has deliveries; the steps are: Bill, Ship"
    ):
        deliveries("--step", "Shipp")


def test_dead_with_another_status_is_an_error(history):
    with pytest.raises(CommandError, match="--dead means --status dead"):
        deliveries("--dead", "--status", "pending")


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_a_limit_below_one_is_an_error(history, limit):
    with pytest.raises(CommandError, match="--limit is a number of deliveries, 1 or more"):
        deliveries("--limit", limit)


def test_an_unknown_status_is_refused(history):
    with pytest.raises(CommandError, match="invalid choice: 'failed'"):
        deliveries("--status", "failed")
