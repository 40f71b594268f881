"""Live logs across processes: a worker of runserver's cluster writes a log line, and a
websocket consumer in this (other) process receives it through channels-redis."""

import socket

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from bench.stack import Stack
from tests.e2e.conftest import register
from tests.workbench.conftest import staff_user
from workbench import permissions
from workbench.consumers import LiveConsumer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
REDIS_URL = "redis://127.0.0.1:6379/14"


def redis_up():
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


@pytest.mark.skipif(not redis_up(), reason="Redis is not running on 127.0.0.1:6379")
def test_a_log_line_written_by_a_worker_reaches_a_websocket_in_another_process(settings, tmp_path):
    """Register through runserver (its own processes); the consumer here gets the
    welcome email step's log line, written in a worker process, from Redis."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    staff = staff_user("staff", *permissions.FEED)  # the feed's view permissions
    with Stack(tmp_path, env={"REDIS_URL": REDIS_URL}, reload=False) as stack:

        @async_to_sync
        async def tail():
            client = WebsocketCommunicator(LiveConsumer.as_asgi(), "/workbench/ws/")
            client.scope["user"] = staff
            assert (await client.connect())[0]
            user = await sync_register(stack)
            lines = []
            while not any(is_email_log(line) for line in lines):
                lines.append(await client.receive_json_from(timeout=10))
            await client.disconnect()
            return user, lines

        user, lines = tail()
        cluster = {process.pid for process in stack.cluster_processes()}
        (worker,) = stack.query(
            "SELECT worker FROM workflow_run WHERE step_name = 'SendWelcomeEmail'"
        )[0]
    email = next(line for line in lines if is_email_log(line))
    assert email["message"] == "Sending welcome email"
    assert email["fields"]["userId"] == user["userId"]
    assert int(worker.split(":")[1].split("/")[0]) in cluster, "not written by a cluster worker"


def is_email_log(message):
    return message["kind"] == "log" and message["step"] == "SendWelcomeEmail"


async def sync_register(stack):
    return await sync_to_async(register)(stack)
