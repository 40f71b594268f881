"""The live log tail: staff-only websockets, origin checked, lines relayed from the group."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User

from config.asgi import application
from workflow import live
from workflow.consumers import LogTailConsumer
from workflow.models import LogEntry

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(user):
    connected = WebsocketCommunicator(LogTailConsumer.as_asgi(), "/workbench/ws/logs/")
    connected.scope["user"] = user
    return connected


@async_to_sync
async def connects(user):
    client = communicator(user)
    accepted, code = await client.connect()
    await client.disconnect()
    return accepted, code


def test_anonymous_and_non_staff_users_are_refused():
    """Only active staff users get the live tail; others are closed with 4003."""
    clerk = User.objects.create_user("clerk", password="x" * 12)
    assert connects(AnonymousUser()) == (False, 4003)
    assert connects(clerk) == (False, 4003)


def test_a_staff_user_receives_each_line_sent_to_the_group():
    """A line sent to workflow.logs reaches a connected staff websocket as JSON."""
    staff = User.objects.create_user("staff", password="x" * 12, is_staff=True)

    @async_to_sync
    async def receive():
        client = communicator(staff)
        accepted, _ = await client.connect()
        assert accepted
        layer = get_channel_layer()
        await layer.group_send(live.GROUP, {"type": "log.line", "line": {"message": "hi"}})
        message = await client.receive_json_from(timeout=2)
        await client.disconnect()
        return message

    assert receive() == {"message": "hi"}


def test_a_websocket_from_another_origin_is_refused():
    """The router rejects an Origin that is not in ALLOWED_HOSTS, before any consumer."""

    @async_to_sync
    async def connect_from(origin):
        client = WebsocketCommunicator(
            application, "/workbench/ws/logs/", headers=[(b"origin", origin)]
        )
        accepted, _ = await client.connect()
        await client.disconnect()
        return accepted

    assert connect_from(b"http://evil.example.com") is False


def test_line_carries_the_stored_entry_with_its_redacted_fields():
    """live.line() gives what the workbench shows: step, trace, level, message, fields."""
    entry = LogEntry.objects.create(
        level="info",
        message="Registering",
        step_name="RegisterUser",
        trace_id="t" * 32,
        fields={"email": "a@example.com", "password": "[redacted]"},
    )
    sent = live.line(entry)
    assert sent["step"] == "RegisterUser" and sent["traceId"] == "t" * 32
    assert sent["level"] == "info" and sent["message"] == "Registering"
    assert sent["fields"] == {"email": "a@example.com", "password": "[redacted]"}
