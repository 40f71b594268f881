"""The step logger: structured lines, redacted, persisted, and announced to observers.

    ctx.logger.info("Sending welcome email", user_id=user_id)
    ctx.logger.info("Registering new user", {"name": name, "email": email})

Each line goes to Python logging (logger ``workflow.steps``) at once and is stored as
a ``LogEntry``. A line written inside a database transaction is stored after it ends,
whether it commits or not: the logs of a failed attempt are kept. A line written by
async code (an ``async def`` handler) is printed at once and stored when the handler
returns, since async code may not use the database directly.

In a worker process the handler threads hand their lines to the process's
``LogWriter``, which stores those written meanwhile by every handler in one INSERT
from a thread of its own: a line alone is stored at once, and a busy worker stores
many per statement instead of one transaction per line (on SQLite each takes the one
write lock the web server and every worker share).
"""

import asyncio
import logging
import math
import queue
import threading
from collections.abc import Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from . import signals
from .conf import workflow_settings
from .connections import give_back
from .models import LogEntry, Run

python_logger = logging.getLogger("workflow.steps")
REDACTED = "[redacted]"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def redact(value: Any, keys: list[str] | None = None) -> Any:
    """``value`` with every field whose name contains a configured key replaced."""
    keys = keys if keys is not None else [k.lower() for k in workflow_settings.REDACT_KEYS]
    if isinstance(value, dict):
        return {
            k: REDACTED if any(s in str(k).lower() for s in keys) else redact(v, keys)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, keys) for v in value]
    if isinstance(value, tuple):
        return tuple(redact(v, keys) for v in value)
    return value


def jsonable(fields: Mapping[Any, Any]) -> dict[str, Any]:
    """Log fields as JSON, never raising and never losing the line.

    A value JSON holds as given is kept (a ``str``, ``int`` or ``float`` subclass, such as
    an enum, as its plain value); a datetime, date, time, timedelta, Decimal or
    UUID is written as Django's ``DjangoJSONEncoder`` writes it (ISO text); anything else
    JSON cannot hold as given (an object, a set, a tuple, a dict with a key that is not
    a string, NaN or an infinity) is stored as its ``repr()``, so the line shows it
    rather than a silently changed value (or a line PostgreSQL refuses, for NaN). Fields
    inside a value stored as its ``repr()`` are redacted first.
    """
    return {
        name if isinstance(name, str) else repr(name): _loggable(value, set())
        for name, value in fields.items()
    }


def _loggable(value: Any, open_containers: set[int]) -> Any:
    if value is None or type(value) in (str, bool, int):
        return value
    if isinstance(value, float):
        return float.__float__(value) if math.isfinite(value) else repr(value)
    if isinstance(value, str | int):  # an enum, a SafeString: its plain value
        return str.__str__(value) if isinstance(value, str) else int.__int__(value)
    if id(value) in open_containers:  # a list or dict inside itself: as repr() shows it
        return "[...]" if isinstance(value, list) else "{...}"
    plain_dict = isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if plain_dict or isinstance(value, list):
        open_containers.add(id(value))
        try:
            if plain_dict:
                return {k: _loggable(v, open_containers) for k, v in value.items()}
            return [_loggable(v, open_containers) for v in value]
        finally:
            open_containers.discard(id(value))
    try:
        return _ENCODER.default(value)  # datetime, Decimal, UUID, lazy text
    except TypeError:
        pass
    try:
        return repr(redact(value))  # a tuple, a dict with an int key: no secret inside
    except RecursionError:  # one that contains itself
        return f"<{type(value).__name__} that contains itself>"


_ENCODER = DjangoJSONEncoder()


def in_event_loop() -> bool:
    """True in async code, where the database may not be used directly."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class StepLogger:
    """``ctx.logger``: ``info("message", {"field": value})`` or ``info("message", field=value)``."""

    def __init__(
        self,
        step_name: str,
        trace_id: str,
        run: Run | None = None,
        writer: "LogWriter | None" = None,
    ) -> None:
        self.step_name = step_name
        self.trace_id = trace_id
        self.run = run
        self.writer = writer  # stores the lines instead of this thread (a worker's)
        self._pending: list[LogEntry] = []

    def debug(self, message: str, fields: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._log("debug", message, fields, kwargs)

    def info(self, message: str, fields: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._log("info", message, fields, kwargs)

    def warn(self, message: str, fields: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._log("warn", message, fields, kwargs)

    warning = warn

    def error(self, message: str, fields: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._log("error", message, fields, kwargs)

    def _log(
        self,
        level: str,
        message: str,
        fields: Mapping[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> None:
        data = redact(jsonable({**(fields or {}), **kwargs}))
        message = str(message)
        if python_logger.isEnabledFor(LEVELS[level]):
            shown = " ".join(f"{k}={v}" for k, v in data.items())
            python_logger.log(
                LEVELS[level],
                "[%s] %s %s (trace %s)",
                self.step_name,
                message,
                shown,
                self.trace_id[:8],
            )
        if not workflow_settings.PERSIST_LOGS:
            return
        self._pending.append(
            LogEntry(
                level=level,
                message=message,
                step_name=self.step_name,
                trace_id=self.trace_id,
                fields=data,
                run=self.run,
            )
        )
        if not in_event_loop() and not connection.in_atomic_block:
            self.flush()

    def flush(self) -> None:
        """Store the lines held back while a transaction was open (or by async code)."""
        if self.writer is not None:
            entries = self.take()
            if entries:
                self.writer.put(self, entries)
            return
        self.store(self.take())

    def store(self, entries: list[LogEntry]) -> None:
        """Store ``entries`` (from ``take()``); a failure is logged, not raised."""
        if not entries:
            return
        try:
            LogEntry.objects.bulk_create(entries)
        except Exception:
            python_logger.exception("Could not store %d step log lines", len(entries))
            return
        self.stored(entries)

    def take(self) -> list[LogEntry]:
        """The lines waiting to be stored, if they can be stored now (no transaction
        open, not in async code), each with this logger's run; the caller stores them,
        then calls ``stored()``."""
        if not self._pending or in_event_loop() or connection.in_atomic_block:
            return []
        pending, self._pending = self._pending, []
        for entry in pending:
            entry.run = entry.run or self.run
        return pending

    def stored(self, entries: list[LogEntry]) -> None:
        """``entries`` (from ``take()``) are stored: announce them."""
        # Back to the pool (PostgreSQL): a handler that logs, then waits on a mail server
        # or an API, holds no connection while it waits.
        give_back()
        for entry in entries:
            signals.send(signals.log_written, sender=LogEntry, entry=entry)


class LogWriter:
    """Stores the lines of a worker process's handler threads from a thread of its own:
    each time, every line handed over since its last INSERT, in one statement. If that
    fails, each logger's lines are tried on their own, so one bad line loses no other."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[StepLogger, list[LogEntry]] | None] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._run, name="step-log-writer", daemon=True)
        self.thread.start()

    def put(self, logger: StepLogger, entries: list[LogEntry]) -> None:
        self.queue.put((logger, entries))

    def close(self, timeout: float = 5) -> None:
        """Store what was handed over, then end the thread (within ``timeout`` seconds)."""
        self.queue.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        closing = False
        while not closing:
            batch = [self.queue.get()]
            while True:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            closing = None in batch
            self._store([item for item in batch if item is not None])
        connection.close()

    def _store(self, batch: list[tuple[StepLogger, list[LogEntry]]]) -> None:
        if not batch:
            return
        try:
            LogEntry.objects.bulk_create([entry for _, entries in batch for entry in entries])
        except Exception:
            connection.close()
            for logger, entries in batch:
                for entry in entries:
                    entry.pk = None
                logger.store(entries)  # logs its own failure
            return
        for logger, entries in batch:
            logger.stored(entries)
