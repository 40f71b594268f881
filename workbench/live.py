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

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

GROUP = "workbench.live"


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
        "attempt": run.attempt,
        "startedAt": run.started_at.isoformat() if run.started_at else None,
        "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
    }


def send(message):
    layer = get_channel_layer()
    if crosses_processes(layer):
        async_to_sync(layer.group_send)(GROUP, {"type": "live.message", "message": message})


def broadcast_log(sender, entry, **kwargs):
    send(log_message(entry))


def broadcast_run(sender, run, **kwargs):
    send(run_message(run))
