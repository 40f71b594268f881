"""``async def`` handlers: run in the worker and in API steps with awaitable ctx methods,
and all or nothing as sync ones are (a failure discards their emits and state writes).

run_delivery closes old database connections, an ASGI request runs in a thread of its
own, and log lines are stored once no transaction is open, so most tests here use
``transaction=True``.
"""

import asyncio
import types

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from rest_framework.test import APIClient

from users.models import Account
from workflow import bus
from workflow.aio import NotAwaited, call_handler
from workflow.context import Context
from workflow.models import Delivery, Event, LogEntry, Run, StateEntry
from workflow.runner import run_delivery
from workflow.state import StateStore
from workflow.steps import ApiStep, CronStep, EventStep


def add_worker(steps, handler, **config):
    config = {"name": "Worker", "subscribes": ["job"], "emits": ["job.done"], **config}
    steps.add(EventStep(**config), handler)
    steps.add(EventStep(name="Next", subscribes=["job.done"]), lambda input, ctx: None)


def emit_one(data):
    return Delivery.objects.get(event=bus.emit("job", data)).pk


# In the worker ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_async_event_handler_awaits_state_and_emit_and_its_work_lands(steps):
    """An async handler run by run_delivery reads and writes state, emits and logs; the
    delivery succeeds and its held writes land with it."""
    StateStore().set("counters", "seen", 41)

    async def handler(input, ctx):
        seen = await ctx.state.get("counters", "seen")
        await ctx.state.set("results", "n", input["n"])
        assert await ctx.state.get("results", "n") == input["n"]  # its own write, held
        assert await ctx.state.update("counters", "seen", lambda v: v + 1) == seen + 1
        await asyncio.sleep(0)
        await ctx.emit("job.done", {"n": input["n"] + 1})
        ctx.logger.info("worked async", n=input["n"])

    add_worker(steps, handler)
    delivery_id = emit_one({"n": 7})
    assert run_delivery(delivery_id, "w1") == Run.Status.SUCCEEDED
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == Delivery.Status.SUCCEEDED
    assert StateStore().get("results", "n") == 7
    assert StateStore().get("counters", "seen") == 42
    done = Event.objects.get(topic="job.done")
    assert (done.data, done.trace_id, done.emitted_by) == ({"n": 8}, delivery.trace_id, "Worker")
    assert Delivery.objects.filter(event=done, step_name="Next").exists()
    entry = LogEntry.objects.get(message="worked async")
    assert (entry.fields, entry.run_id) == ({"n": 7}, Run.objects.get(delivery=delivery).pk)


@pytest.mark.django_db(transaction=True)
def test_failing_async_event_handler_discards_its_emits_and_state_writes(steps):
    """An async handler that raises after awaiting emits and writes: nothing lands, the
    failure is recorded and retried, its log lines are kept."""

    async def handler(input, ctx):
        await ctx.state.set("results", "n", 1)
        await ctx.emit("job.done", {"n": 2})
        ctx.logger.info("about to fail")
        raise ValueError("async boom")

    add_worker(steps, handler)
    delivery_id = emit_one({"n": 1})
    assert run_delivery(delivery_id) == Run.Status.FAILED
    assert not StateEntry.objects.exists()
    assert not Event.objects.filter(topic="job.done").exists()
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.last_error) == (
        Delivery.Status.PENDING,
        "ValueError: async boom",
    )
    assert "async boom" in Run.objects.get().traceback
    assert LogEntry.objects.filter(message="about to fail").exists()


@pytest.mark.django_db(transaction=True)
def test_an_emit_not_awaited_fails_the_attempt_saying_to_await(steps):
    """``ctx.emit(...)`` without await would do nothing: the attempt fails and says so."""

    async def handler(input, ctx):
        ctx.emit("job.done", {"n": 2})  # forgot await

    add_worker(steps, handler)
    delivery_id = emit_one({"n": 1})
    assert run_delivery(delivery_id) == Run.Status.FAILED
    assert not Event.objects.filter(topic="job.done").exists()
    error = Delivery.objects.get(pk=delivery_id).last_error
    assert error.startswith("NotAwaited: ctx.emit was called without await")
    assert "`await ctx.emit(...)`" in error


@pytest.mark.django_db(transaction=True)
def test_async_cron_handler_runs_with_only_ctx(steps):
    """An async cron handler gets the context alone and its awaited state write lands."""

    async def tick(ctx):
        await ctx.state.set("cron", "ticked", True)

    step = steps.add(CronStep(name="Tick", cron="* * * * *"), tick)
    ctx = Context(step, "t" * 32, held=False)
    call_handler(step.handler, (), ctx)
    assert StateStore().get("cron", "ticked") is True


@pytest.mark.django_db
def test_sync_handlers_get_the_sync_context(steps):
    """A plain handler still gets the sync context: its calls return values, not awaitables."""
    seen = {}

    def handler(input, ctx):
        seen["set"] = ctx.state.set("g", "k", {"v": 1})
        seen["get"] = ctx.state.get("g", "k")

    step = steps.add(EventStep(name="Sync", subscribes=["t"]), handler)
    call_handler(step.handler, ({},), Context(step, "t" * 32, held=False))
    assert seen == {"set": {"v": 1}, "get": {"v": 1}}


def test_not_awaited_names_the_state_method():
    """The error for a forgotten await names the method that was called."""

    async def handler(input, ctx):
        ctx.state.set("g", "k", 1)

    step = types.SimpleNamespace(
        name="S", file="s_step.py", config=EventStep(name="S", subscribes=["t"])
    )
    with pytest.raises(NotAwaited, match=r"await ctx.state.set\(...\)"):
        call_handler(handler, ({},), Context(step, "t" * 32, held=True, logger=object()))


# In API steps -----------------------------------------------------------------------


def order_step(steps, serve, handler):
    config = ApiStep(name="PlaceOrder", method="POST", path="/orders", emits=["order.placed"])
    serve(steps.add(config, handler, "", "orders_step.py"))
    steps.add(EventStep(name="ShipOrder", subscribes=["order.placed"]), lambda input, ctx: None)


async def place_order(request, ctx):
    order = {"item": request.body["item"]}
    await ctx.state.set("orders", "1", order)
    await ctx.emit("order.placed", {"orderId": 1})
    ctx.logger.info("Order placed", orderId=1)
    if request.body.get("fail"):
        raise RuntimeError("payment service down")
    return {"status": 201, "body": {"orderId": 1, **await ctx.state.get("orders", "1")}}


@pytest.mark.django_db(transaction=True)
def test_async_api_step_answers_and_commits_its_emits_and_state(steps, serve):
    """An async API handler's awaited state write and emit commit with its 201."""
    order_step(steps, serve, place_order)
    response = APIClient().post("/orders", {"item": "book"}, format="json")
    assert response.status_code == 201
    assert response.json() == {"orderId": 1, "item": "book"}
    assert StateStore().get("orders", "1") == {"item": "book"}
    event = Event.objects.get()
    assert (event.topic, event.trace_id) == ("order.placed", response["X-Trace-Id"])
    assert Delivery.objects.filter(event=event, step_name="ShipOrder").exists()
    run = Run.objects.get(step_name="PlaceOrder")
    assert LogEntry.objects.get(message="Order placed").run_id == run.pk


@pytest.mark.django_db(transaction=True)
def test_failing_async_api_step_rolls_back_emits_state_and_orm_writes(steps, serve):
    """An async API handler that raises: 500, and its emits, state writes and async ORM
    writes are all rolled back; its log lines and failed run are kept."""

    async def handler(request, ctx):
        await Account.objects.acreate(user_id="u1", email="a@example.com", password="x")
        return await place_order(request, ctx)

    order_step(steps, serve, handler)
    response = APIClient().post("/orders", {"item": "book", "fail": True}, format="json")
    assert response.status_code == 500
    assert (Event.objects.count(), Delivery.objects.count()) == (0, 0)
    assert not StateEntry.objects.exists()
    assert not Account.objects.exists()
    run = Run.objects.get(step_name="PlaceOrder")
    assert (run.status, run.error) == (Run.Status.FAILED, "RuntimeError: payment service down")
    assert LogEntry.objects.get(message="Order placed").run_id == run.pk


@pytest.mark.django_db(transaction=True)
def test_async_api_step_under_asgi(steps, serve):
    """Served through Django's ASGI handler (as daphne serves it), an async API step's
    work commits and a failing one's is rolled back."""
    order_step(steps, serve, place_order)
    client = AsyncClient()
    ok = async_to_sync(client.post)("/orders", {"item": "pen"}, content_type="application/json")
    assert ok.status_code == 201
    assert StateStore().get("orders", "1") == {"item": "pen"}
    StateEntry.objects.all().delete()
    failed = async_to_sync(client.post)(
        "/orders", {"item": "pen", "fail": True}, content_type="application/json"
    )
    assert failed.status_code == 500
    assert not StateEntry.objects.exists()
    assert list(Event.objects.values_list("trace_id", flat=True)) == [ok["X-Trace-Id"]]
