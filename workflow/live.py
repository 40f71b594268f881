"""Live step logs for the workbench: log lines sent to a Channels group as they are stored.

A receiver of ``log_written`` (it observes; it never steers) sends each stored line
to the group ``workflow.logs``; ``consumers.LogTailConsumer`` relays the group to
staff websockets. The lines are written by workers in other processes than the web
server, so this needs a channel layer that crosses processes (channels-redis, which
``REDIS_URL`` configures); with the in-memory default there is nobody to reach, and
nothing is sent.
"""

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

GROUP = "workflow.logs"


def line(entry):
    """What a websocket receives for one stored ``LogEntry`` (fields already redacted)."""
    return {
        "id": entry.pk,
        "time": entry.created_at.isoformat(),
        "level": entry.level,
        "step": entry.step_name,
        "traceId": entry.trace_id,
        "message": entry.message,
        "fields": entry.fields,
    }


def broadcast_log(sender, entry, **kwargs):
    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return
    async_to_sync(layer.group_send)(GROUP, {"type": "log.line", "line": line(entry)})
