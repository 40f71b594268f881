"""Live updates for the workbench: log lines and run status changes, as messages.

Two ways carry them to the websockets of ``consumers.LiveConsumer`` (group
``workbench.live``):

- A channel layer that crosses processes (channels-redis, which ``REDIS_URL``
  configures): the process that stores a line or records a run sends it to the group
  itself, through receivers of the workflow signals (they observe, never steer).
- The in-memory default: the lines are written by workers in other processes than the
  web server, which no in-memory layer reaches. There, ``relay.Relay`` in the web
  server reads new rows from the database and sends them to the group.
"""

import asyncio
import logging
import os
import queue
import threading

from channels.layers import InMemoryChannelLayer, get_channel_layer

GROUP = "workbench.live"
logger = logging.getLogger("workbench")


def crosses_processes(layer):
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


def log_message(entry):
    """What a websocket receives for one stored ``LogEntry`` (fields already redacted)."""
    return {
        "kind": "log",
        "id": entry.pk,
        "time": entry.created_at.isoformat(),
        "level": entry.level,
        "step": entry.step_name,
        "traceId": entry.trace_id,
        "message": entry.message,
        "fields": entry.fields,
    }


def run_message(run):
    """What a websocket receives when a run starts or finishes."""
    return {
        "kind": "run",
        "id": run.pk,
        "step": run.step_name,
        "traceId": run.trace_id,
        "status": run.status,
        "statusCode": run.status_code,
        "attempt": run.attempt,
        "startedAt": run.started_at.isoformat() if run.started_at else None,
        "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
    }


class Sender:
    """Sends messages to the group from a thread of its own, with one event loop.

    The signals are sent by handler threads and request threads; sending from each
    through ``async_to_sync`` made a new event loop, and with it a new Redis
    connection, for every message, on the handler's time. Here they queue, in order,
    and one loop (one connection pool) sends them, those queued meanwhile together.
    """

    def __init__(self, layer):
        self.layer = layer
        self.pid = os.getpid()
        self.queue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="workbench-live", daemon=True).start()

    def put(self, message):
        self.queue.put(message)

    def _run(self):
        loop = asyncio.new_event_loop()
        while True:
            messages = [self.queue.get()]
            while not self.queue.empty():
                messages.append(self.queue.get())
            try:
                loop.run_until_complete(self._send(messages))
            except Exception:
                logger.exception("Could not send %d live messages", len(messages))

    async def _send(self, messages):
        for start in range(0, len(messages), BATCH):
            await group_send(self.layer, messages[start : start + BATCH])


BATCH = 50  # messages per group message, at most


async def group_send(layer, messages):
    """Send ``messages`` to the group as one message of the layer (``LiveConsumer``
    passes each on as a websocket message of its own): with channels-redis, a batch
    costs the Redis round trips of one message."""
    await layer.group_send(GROUP, {"type": "live.messages", "messages": messages})


_sender = None
_sender_lock = threading.Lock()


def sender(layer):
    """This process's sender (a forked worker makes its own)."""
    global _sender
    with _sender_lock:
        if _sender is None or _sender.pid != os.getpid() or _sender.layer is not layer:
            _sender = Sender(layer)
        return _sender


def send(message):
    layer = get_channel_layer()
    if crosses_processes(layer):
        sender(layer).put(message)


def broadcast_log(sender, entry, **kwargs):
    send(log_message(entry))


def broadcast_run(sender, run, **kwargs):
    send(run_message(run))
