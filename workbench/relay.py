"""The in-memory layer's source of live messages: new rows read from the database.

Workers run in other processes than the web server; without a layer that crosses
processes, the web server learns of their log lines and runs from the tables they
write. One relay per process polls while at least one websocket listens: log lines
and runs with a higher id than seen before, and the runs it saw running, for their
end. Ids are read a little behind the newest seen (``LOOKBACK``) so a row committed
after a higher one (possible on PostgreSQL) is not skipped; ``seen`` drops repeats.
"""

import asyncio
import logging
from collections import deque

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from workflow.models import LogEntry, Run

from . import live

logger = logging.getLogger("workbench")
INTERVAL = 0.15
BATCH = 500
LOOKBACK = 50


class _Seen:
    """A bounded set of ids already sent."""

    def __init__(self, size=4 * BATCH):
        self.order, self.ids = deque(), set()
        self.size = size

    def add(self, key):
        if key in self.ids:
            return False
        self.ids.add(key)
        self.order.append(key)
        if len(self.order) > self.size:
            self.ids.discard(self.order.popleft())
        return True


class Relay:
    def __init__(self):
        self.last_log = self.last_run = None
        self.running = {}  # run id -> status sent
        self.seen = _Seen()

    def start_at_newest(self):
        newest = LogEntry.objects.order_by("-id").values_list("id", flat=True).first()
        self.last_log = newest or 0
        newest = Run.objects.order_by("-id").values_list("id", flat=True).first()
        self.last_run = newest or 0
        self.running = dict(
            Run.objects.filter(status=Run.Status.RUNNING).values_list("id", "status")[:BATCH]
        )
        self.changes()  # marks the rows already there (within the lookback) as seen

    def poll(self):
        """The messages for what changed since the last poll, oldest first."""
        if self.last_log is None:
            self.start_at_newest()
            return []
        return self.changes()

    def changes(self):
        logs = LogEntry.objects.filter(id__gt=self.last_log - LOOKBACK).order_by("id")[:BATCH]
        messages = []
        for entry in logs:
            self.last_log = max(self.last_log, entry.pk)
            if self.seen.add(("log", entry.pk)):
                messages.append(live.log_message(entry))
        watched = Run.objects.filter(id__gt=self.last_run - LOOKBACK) | Run.objects.filter(
            id__in=list(self.running)
        )
        for run in watched.order_by("id")[:BATCH]:
            self.last_run = max(self.last_run, run.pk)
            messages.extend(self._run_changed(run))
        return messages

    def _run_changed(self, run):
        if self.running.get(run.pk) == run.status or not self.seen.add(("run", run.pk, run.status)):
            return []
        if run.status == Run.Status.RUNNING:
            self.running[run.pk] = run.status
        else:
            self.running.pop(run.pk, None)
        return [live.run_message(run)]


class _Process:
    """The one relay of this process, running while websockets listen."""

    listeners = 0
    task = None

    @classmethod
    def listen(cls):
        cls.listeners += 1
        loop = asyncio.get_running_loop()
        if cls.task is None or cls.task.done() or cls.task.get_loop() is not loop:
            cls.task = loop.create_task(cls.run(Relay()))

    @classmethod
    def leave(cls):
        cls.listeners = max(0, cls.listeners - 1)

    @classmethod
    async def run(cls, relay):
        layer = get_channel_layer()
        poll = database_sync_to_async(relay.poll)
        while cls.listeners:
            try:
                messages = await poll()
                for start in range(0, len(messages), live.BATCH):
                    await live.group_send(layer, messages[start : start + live.BATCH])
            except Exception:  # a locked or lost database: the pages wait, then catch up
                logger.exception("The workbench relay could not read new rows; retrying")
                await asyncio.sleep(1)
            await asyncio.sleep(INTERVAL)


listen = _Process.listen
leave = _Process.leave
