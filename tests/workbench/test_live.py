"""The workbench websocket: staff only, origin checked, messages relayed from the group."""

import threading
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User

from config.asgi import application
from tests.workbench.conftest import staff_user
from workbench import live, permissions
from workbench.consumers import LiveConsumer
from workflow.models import LogEntry

pytestmark = pytest.mark.django_db(transaction=True)


def follower(username="follower"):
    """A staff user with the feed's permissions (and no other)."""
    return staff_user(username, *permissions.FEED)


def communicator(user):
    connected = WebsocketCommunicator(LiveConsumer.as_asgi(), "/workbench/ws/")
    connected.scope["user"] = user
    return connected


@async_to_sync
async def refusal(user):
    """The close code the websocket of ``user`` gets at once, or None if it stays open."""
    client = communicator(user)
    accepted, _ = await client.connect()
    assert accepted
    if await client.receive_nothing(timeout=0.2):
        await client.disconnect()
        return None
    closed = await client.receive_output()
    return closed["code"] if closed["type"] == "websocket.close" else None


def test_anonymous_and_non_staff_users_are_refused():
    """Only active staff users with the feed's permissions get live messages; others,
    a staff user without them included, are closed with 4003."""
    clerk = User.objects.create_user("clerk", password="x" * 12)
    staff = User.objects.create_user("staff", password="x" * 12, is_staff=True)
    assert refusal(AnonymousUser()) == 4003
    assert refusal(clerk) == 4003
    assert refusal(staff) == 4003
    assert refusal(follower()) is None


def test_a_staff_user_receives_each_message_of_a_batch_sent_to_the_group():
    """A batch sent to the workbench group reaches a connected staff websocket as one
    JSON message each, in order."""
    staff = follower()

    @async_to_sync
    async def receive():
        client = communicator(staff)
        accepted, _ = await client.connect()
        assert accepted
        await live.group_send(get_channel_layer(), [{"m": "hi"}, {"m": "again"}])
        messages = [await client.receive_json_from(timeout=2) for _ in range(2)]
        assert await client.receive_nothing(timeout=0.2)
        await client.disconnect()
        return messages

    assert receive() == [{"m": "hi"}, {"m": "again"}]


def test_the_sender_sends_what_was_queued_meanwhile_in_one_group_message(monkeypatch):
    """Messages queued while the sender's loop is busy leave together: one group
    message of at most BATCH, in order."""
    sent, gate = [], threading.Event()

    class Layer:
        async def group_send(self, group, message):
            gate.wait(5)  # the first send holds the loop while the rest queue
            sent.append((group, message))

    monkeypatch.setattr(live, "BATCH", 3)
    sender = live.Sender(Layer())
    for n in range(5):
        sender.put({"n": n})
    gate.set()
    deadline = time.monotonic() + 5
    while sum(len(m["messages"]) for _, m in sent) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    batches = [[x["n"] for x in message["messages"]] for _, message in sent]
    assert [n for batch in batches for n in batch] == [0, 1, 2, 3, 4]
    assert all(len(batch) <= 3 for batch in batches) and len(batches) < 5
    assert {group for group, _ in sent} == {live.GROUP}
    assert {message["type"] for _, message in sent} == {"live.messages"}


def test_a_websocket_from_another_origin_is_refused():
    """The router rejects an Origin that is not in ALLOWED_HOSTS, before any consumer."""

    @async_to_sync
    async def connect_from(origin):
        client = WebsocketCommunicator(application, "/workbench/ws/", headers=[(b"origin", origin)])
        accepted, _ = await client.connect()
        await client.disconnect()
        return accepted

    assert connect_from(b"http://evil.example.com") is False


def test_a_log_message_carries_the_stored_entry_with_its_redacted_fields():
    """live.log_message() gives what the workbench shows: step, trace, level, message, fields."""
    entry = LogEntry.objects.create(
        level="info",
        message="Registering",
        step_name="RegisterUser",
        trace_id="t" * 32,
        fields={"email": "a@example.com", "password": "[redacted]"},
    )
    sent = live.log_message(entry)
    assert sent["kind"] == "log" and sent["step"] == "RegisterUser" and sent["traceId"] == "t" * 32
    assert sent["level"] == "info" and sent["message"] == "Registering"
    assert sent["fields"] == {"email": "a@example.com", "password": "[redacted]"}
