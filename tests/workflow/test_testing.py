"""workflow.testing: FlowTester runs a flow inline (API call in, deliveries run until quiet)."""

import types
from unittest.mock import ANY

import pytest
from django.urls import path
from rest_framework import serializers

from workflow.models import Delivery, Run
from workflow.steps import ApiStep, CronStep, EventStep
from workflow.testing import FlowNotQuiet, FlowTester
from workflow.views import view_for

pytestmark = pytest.mark.store  # the store's path: run on PostgreSQL too

Status = Delivery.Status


class OrderSerializer(serializers.Serializer):
    orderId = serializers.IntegerField()


def place_order(request, ctx):
    ctx.logger.info("Placing order", orderId=request.body["orderId"], password="hunter2")
    ctx.emit("order.placed", {"orderId": request.body["orderId"]})
    return {"status": 201, "body": {"orderId": request.body["orderId"]}}


def ship(input, ctx):
    import time

    time.sleep(5)  # a slow carrier
    ctx.state.set("shipments", str(input["orderId"]), {"shipped": True})
    ctx.logger.info("Shipped", orderId=input["orderId"])
    ctx.emit("order.shipped", {"orderId": input["orderId"]})


def notify(input, ctx):
    ctx.state.update("counts", "notified", lambda n: (n or 0) + 1)


@pytest.fixture
def shop(steps, settings):
    """POST /orders (PlaceOrder) -> order.placed -> Ship -> order.shipped -> Notify,
    served from a URLconf of their own."""
    config = ApiStep(
        name="PlaceOrder",
        method="POST",
        path="/orders",
        emits=["order.placed"],
        body_schema=OrderSerializer,
    )
    api = steps.add(config, place_order)
    steps.add(
        EventStep(
            name="Ship", subscribes=["order.placed"], emits=["order.shipped"], input=OrderSerializer
        ),
        ship,
    )
    steps.add(EventStep(name="Notify", subscribes=["order.shipped"]), notify)
    urlconf = types.ModuleType("testing_urlconf")
    urlconf.urlpatterns = [path(config.route, view_for({"POST": api}))]
    settings.ROOT_URLCONF = urlconf
    return steps


@pytest.mark.django_db
def test_an_api_call_runs_the_whole_flow_inline(shop):
    """The request goes through the URL and view; each delivery it causes is run, and the
    ones those cause, until none is left; topics, data, state and logs are all there."""
    flow = FlowTester(sleep=False)
    response = flow.post("/orders", {"orderId": 7})
    assert (response.status_code, response.json()) == (201, {"orderId": 7})
    assert flow.topics == ["order.placed", "order.shipped"]
    flow.assert_emitted("order.placed", {"orderId": 7}, count=1)
    flow.assert_emitted("order.shipped", {"orderId": ANY})
    assert [(step, status) for _, step, status in flow.runs] == [
        ("Ship", Run.Status.SUCCEEDED),
        ("Notify", Run.Status.SUCCEEDED),
    ]
    flow.assert_ran("Notify")
    assert flow.state.get("shipments", "7") == {"shipped": True}
    assert flow.state.get("counts", "notified") == 1
    flow.assert_logged("Shipped", step="Ship", level="info", orderId=7)
    assert flow.slept == [5]


@pytest.mark.django_db(transaction=True)
def test_it_works_in_a_transactional_test_too(shop):
    """With transaction=True (commits, on_commit wake-ups), the flow runs the same."""
    flow = FlowTester(sleep=False)
    flow.post("/orders", {"orderId": 8})
    flow.assert_ran("Ship")
    flow.assert_ran("Notify")
    assert flow.state.get("counts", "notified") == 1


@pytest.mark.django_db
def test_log_lines_are_redacted_as_stored(shop):
    flow = FlowTester(sleep=False)
    flow.post("/orders", {"orderId": 7})
    [line] = flow.logs("Placing order")
    assert line.fields == {"orderId": 7, "password": "[redacted]"}
    assert line.step == "PlaceOrder"


@pytest.mark.django_db
def test_run_false_leaves_the_deliveries_pending(shop):
    flow = FlowTester()
    flow.post("/orders", {"orderId": 7}, run=False)
    assert [d.status for d in flow.deliveries()] == [Status.PENDING]
    assert flow.runs == []


@pytest.mark.django_db
def test_a_bad_body_is_answered_by_the_real_view(shop):
    response = FlowTester().post("/orders", {"orderId": "x"})
    assert response.status_code == 400
    assert "orderId" in response.json()


@pytest.mark.django_db
def test_retries_run_at_once_until_the_handler_succeeds(steps):
    """A handler failing twice is retried without waiting its backoff: 3 runs, succeeded."""
    calls = []

    def flaky(input, ctx):
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("try again")

    steps.add(EventStep(name="Flaky", subscribes=["t"]), flaky)
    flow = FlowTester()
    flow.emit("t", {})
    assert [status for _, _, status in flow.runs] == ["failed", "failed", "succeeded"]
    flow.assert_ran("Flaky")


@pytest.mark.django_db
def test_a_dead_delivery_is_named_in_the_assertion_message(steps):
    """A handler that always fails ends dead; an assertion on what it should have emitted
    says which delivery died and why."""

    def broken(input, ctx):
        raise ValueError("smtp down")

    steps.add(EventStep(name="Mail", subscribes=["t"], emits=["mail.sent"]), broken)
    flow = FlowTester()
    flow.emit("t", {})
    assert [d.status for d in flow.deliveries("Mail")] == [Status.DEAD]
    with pytest.raises(AssertionError, match="to Mail: dead: ValueError: smtp down"):
        flow.assert_emitted("mail.sent")
    with pytest.raises(AssertionError, match="no succeeded delivery to 'Mail'"):
        flow.assert_ran("Mail")


@pytest.mark.django_db
def test_fast_forward_false_leaves_delayed_deliveries_for_later(steps):
    steps.add(EventStep(name="Later", subscribes=["t"]), lambda input, ctx: None)
    flow = FlowTester(fast_forward=False)
    flow.emit("t", {}, delay=60)
    assert [d.status for d in flow.deliveries()] == [Status.PENDING]
    FlowTester().run_until_quiet()  # fast-forwarding runs it now
    assert [d.status for d in flow.deliveries()] == [Status.SUCCEEDED]


@pytest.mark.django_db
def test_a_flow_that_never_quiets_is_stopped(steps):
    def again(input, ctx):
        ctx.emit("loop", {})

    steps.add(EventStep(name="Loop", subscribes=["loop"], emits=["loop"]), again)
    with pytest.raises(FlowNotQuiet, match="more than 20 runs"):
        FlowTester(max_runs=20).emit("loop", {})


@pytest.mark.django_db
def test_cron_fires_a_slot_and_runs_it(steps):
    steps.add(CronStep(name="Tick", cron="0 3 * * *", emits=["ticked"]), tick)
    flow = FlowTester()
    flow.cron("Tick")
    flow.assert_ran("Tick")
    flow.assert_emitted("ticked", {"n": 1})
    with pytest.raises(LookupError, match="no cron step named 'Tock'"):
        flow.cron("Tock")


def tick(ctx):
    ctx.emit("ticked", {"n": 1})


@pytest.mark.django_db
def test_assertions_fail_with_what_happened(steps):
    steps.add(EventStep(name="Echo", subscribes=["t"], emits=["u"]), echo)
    flow = FlowTester()
    flow.emit("t", {"n": 1})
    flow.emit("t", {"n": 1})
    flow.assert_emitted("u", {"n": 1}, count=2)
    with pytest.raises(AssertionError, match="expected 1 event\\(s\\) on 'u'"):
        flow.assert_emitted("u", {"n": 1}, count=1)
    with pytest.raises(AssertionError, match="with data \\{'n': 2\\}; got \\[\\{'n': 1\\}"):
        flow.assert_emitted("u", {"n": 2})
    with pytest.raises(AssertionError, match="'u' was emitted"):
        flow.assert_not_emitted("u")
    flow.assert_not_emitted("v")
    with pytest.raises(AssertionError, match="(?s)no log line 'Echoed' .*\\[Echo\\] info Echo n=1"):
        flow.assert_logged("Echoed", n=2)


def echo(input, ctx):
    ctx.logger.info("Echo n=1", n=input["n"])
    ctx.emit("u", input)


@pytest.mark.django_db
def test_only_events_since_the_tester_was_made_are_seen(steps):
    steps.add(EventStep(name="Echo", subscribes=["t"], emits=["u"]), echo)
    FlowTester().emit("t", {"n": 1})
    flow = FlowTester()
    assert flow.topics == []
    flow.emit("t", {"n": 2})
    assert flow.emitted("u") == [{"n": 2}]


def test_the_flow_fixture_is_a_flow_tester(flow):
    """The plugin's `flow` fixture (tests/conftest.py loads workflow.testing) has the DB."""
    assert isinstance(flow, FlowTester)
    assert flow.events() == []
