"""The in-memory layer's relay: new log lines and run changes read from the database."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from tests.workbench.conftest import staff_user
from workbench import permissions
from workbench.consumers import LiveConsumer
from workbench.relay import Relay
from workflow.models import LogEntry, Run

pytestmark = pytest.mark.django_db(transaction=True)
TRACE = "a" * 32


def line(message, **fields):
    return LogEntry.objects.create(
        level="info", message=message, step_name="S", trace_id=TRACE, **fields
    )


def kinds(messages):
    return [(m["kind"], m.get("message") or m.get("status")) for m in messages]


def test_the_first_poll_starts_at_the_newest_rows_then_each_new_line_is_sent_once():
    """History is not replayed; a line written after the start is sent, and only once."""
    line("old")
    relay = Relay()
    assert relay.poll() == []
    line("new")
    assert kinds(relay.poll()) == [("log", "new")]
    assert relay.poll() == []


def test_a_run_is_sent_when_it_starts_and_when_it_ends():
    """A run seen running is watched until it finishes; one that started and finished
    between two polls is sent once, finished (an API call's with its status code)."""
    relay = Relay()
    relay.poll()
    run = Run.objects.create(step_name="S", trace_id=TRACE)
    assert kinds(relay.poll()) == [("run", "running")]
    assert relay.poll() == []
    Run.objects.filter(pk=run.pk).update(status="succeeded", finished_at=timezone.now())
    assert kinds(relay.poll()) == [("run", "succeeded")]
    Run.objects.create(step_name="S", trace_id=TRACE, status="failed")
    assert kinds(relay.poll()) == [("run", "failed")]
    assert relay.poll() == []
    Run.objects.create(step_name="S", trace_id=TRACE, status="refused", status_code=409)
    [refused] = relay.poll()
    assert (refused["status"], refused["statusCode"]) == ("refused", 409)


def test_a_line_committed_after_a_higher_id_is_not_skipped():
    """A row whose id is below the newest seen, but which arrived later, is still sent."""
    relay = Relay()
    relay.poll()
    line("later id", id=1000)
    assert kinds(relay.poll()) == [("log", "later id")]
    line("earlier id", id=990)
    assert kinds(relay.poll()) == [("log", "earlier id")]


def test_a_staff_websocket_receives_a_line_written_by_another_thread():
    """With the in-memory layer, a line stored in the database (as a worker would)
    reaches a connected staff websocket through the relay."""
    staff = staff_user("staff", *permissions.FEED)

    @async_to_sync
    async def tail():
        client = WebsocketCommunicator(LiveConsumer.as_asgi(), "/workbench/ws/")
        client.scope["user"] = staff
        assert (await client.connect())[0]
        await client.receive_nothing(timeout=0.5)  # the relay has started at the newest
        await sync_to_async(line)("from a worker", fields={"n": 1})
        message = await client.receive_json_from(timeout=3)
        await client.disconnect()
        return message

    message = tail()
    assert (message["kind"], message["message"], message["fields"]) == (
        "log",
        "from a worker",
        {"n": 1},
    )


def test_the_relay_keeps_going_after_a_failed_read(monkeypatch):
    """A read that fails (say, a locked database) is logged; the next poll still runs."""
    from workbench import relay as relay_module

    calls = []

    def poll(self):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        relay_module._Process.listeners = 0  # stop after the second poll
        return []

    monkeypatch.setattr(relay_module.Relay, "poll", poll)
    monkeypatch.setattr(relay_module, "INTERVAL", 0)
    monkeypatch.setattr(relay_module.asyncio, "sleep", fake_sleep)
    relay_module._Process.listeners = 1
    async_to_sync(relay_module._Process.run)(relay_module.Relay())
    assert len(calls) == 2


async def fake_sleep(seconds):
    return None
