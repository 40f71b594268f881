"""Recording an API call once its transaction has ended, without ever failing the call.

The handler's work has committed (or rolled back) when its run, trace and log lines are
stored: a database error then (SQLite's write lock held by another process past the
timeout, a PostgreSQL connection lost) must not turn the step's answer into a 500, nor
lose the record. So ``record`` never raises: a call it cannot store goes to this
process's backlog, a thread that stores it again after 0.5, 1, 2 ... 30 s, for about
ten minutes; the client meanwhile has its answer and its ``X-Trace-Id``. A record the
backlog cannot store in that time, or holds when the process exits, is logged whole
(logger ``workflow``, ERROR), so it is never lost silently.

Waiting inline instead would hold the client's answer for a record it does not need:
on SQLite the first attempt has already waited the connection's busy timeout.
"""

import atexit
import itertools
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections

from . import signals
from .logs import StepLogger
from .models import LogEntry, Run, Trace
from .store import store

logger = logging.getLogger("workflow")
DELAYS = (0.5, 1, 2, 4, 8, 15) + (30,) * 19  # seconds before each retry: about 10 min


@dataclass(eq=False)
class ApiCall:
    """What an API call leaves to record: its run, its trace and its log lines."""

    run: Run
    trace: Trace
    lines: list[LogEntry] = field(default_factory=list)
    logger: StepLogger | None = None  # announces the lines once stored
    attempts: int = 0

    def save(self):
        """Store the call (raises on a database error), then announce it."""
        if store.record_api_run(self.run, self.trace, self.lines) and self.logger:
            self.logger.stored(self.lines)
        signals.send(signals.run_finished, sender=Run, run=self.run)

    def unsaved(self):
        """Forget ids a failed attempt may have set (its transaction rolled back)."""
        for row in (self.run, self.trace, *self.lines):
            row.pk, row._state.adding = None, True
        for line in self.lines:
            line.run = self.run

    def already_stored(self):
        """Whether the run reached the database after all (an error after the commit)."""
        return Run.objects.filter(
            trace_id=self.run.trace_id, step_name=self.run.step_name, delivery=None
        ).exists()

    def describe(self):
        """The whole record, as JSON (the lines' fields are already redacted)."""
        run, trace = self.run, self.trace
        record = {
            "run": {
                "step": run.step_name,
                "traceId": run.trace_id,
                "status": run.status,
                "statusCode": run.status_code,
                "startedAt": run.started_at,
                "finishedAt": run.finished_at,
                "error": run.error,
                "traceback": run.traceback,
            },
            "trace": {"entryStep": trace.entry_step, "startedAt": trace.started_at},
            "lines": [
                {"at": line.created_at, "level": line.level, "message": line.message,
                 "fields": line.fields}
                for line in self.lines
            ],
        }  # fmt: skip
        return json.dumps(record, cls=DjangoJSONEncoder)


def record(call):
    """Store ``call`` now, or leave it to the backlog: never raises."""
    call.attempts += 1
    try:
        call.save()
    except Exception as exc:
        logger.warning(
            "Could not record the run of API step %s (trace %s): %s: %s; it answered "
            "all the same, and the run is stored again in the background",
            call.run.step_name,
            call.run.trace_id,
            type(exc).__name__,
            exc,
        )
        backlog().put(call)


class Backlog:
    """API calls whose recording failed, stored again by a thread of their own."""

    def __init__(self, delays=DELAYS):
        self.delays = delays
        self.pid = os.getpid()
        self.queue = queue.PriorityQueue()  # (due, order, call): the soonest first
        self.order = itertools.count()
        self.woken = threading.Event()
        self.waiting = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._run, name="workflow-backlog", daemon=True).start()
        atexit.register(self.give_up_all)

    def put(self, call):
        """Store ``call`` again after the delay its attempts so far call for."""
        with self.lock:
            self.waiting.add(call)
        due = time.monotonic() + self.delays[min(call.attempts, len(self.delays)) - 1]
        self.queue.put((due, next(self.order), call))
        self.woken.set()

    def _run(self):
        while True:
            due, order, call = self.queue.get()
            wait = due - time.monotonic()
            if wait > 0:  # not yet: wait for it, or for a call put meanwhile
                self.queue.put((due, order, call))
                self.woken.wait(wait)
                self.woken.clear()
                continue
            try:
                self.retry(call)
            except Exception:  # the thread outlives any one call
                logger.exception("The backlog failed on the run of %s", call.run.step_name)

    def retry(self, call):
        """One more attempt at ``call``; after the last, it is logged whole."""
        call.attempts += 1
        try:
            if not call.already_stored():
                call.unsaved()
                call.save()
        except Exception as exc:
            if call.attempts > len(self.delays):
                self.give_up(call, f"{type(exc).__name__}: {exc}")
            else:
                self.put(call)
            return
        finally:
            connections.close_all()  # this thread's, which no request end closes
        with self.lock:
            self.waiting.discard(call)
        logger.info(
            "Recorded the run of API step %s (trace %s) after %d attempts",
            call.run.step_name,
            call.run.trace_id,
            call.attempts,
        )

    def give_up(self, call, reason):
        with self.lock:
            self.waiting.discard(call)
        logger.error(
            "Gave up recording the run of API step %s (trace %s) after %d attempts (%s); "
            "the record: %s",
            call.run.step_name,
            call.run.trace_id,
            call.attempts,
            reason,
            call.describe(),
        )

    def give_up_all(self):
        """At exit: log the calls still waiting, whole (a forked child's exit leaves
        its parent's to the parent)."""
        if os.getpid() != self.pid:
            return
        with self.lock:
            waiting = list(self.waiting)
        for call in waiting:
            self.give_up(call, "the process is exiting")


_backlog = None
_backlog_lock = threading.Lock()


def backlog():
    """This process's backlog (a forked process makes its own)."""
    global _backlog
    with _backlog_lock:
        if _backlog is None or _backlog.pid != os.getpid():
            _backlog = Backlog()
        return _backlog
