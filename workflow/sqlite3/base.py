"""SQLite for the embedded default: Django's backend, with its writers served in turn.

SQLite has one write lock per database, which the web server, the cluster's pusher and
every worker thread share. A writer that finds it taken waits in SQLite's busy handler,
which sleeps between tries, longer the longer it has waited (up to 100 ms a try),
while a newcomer tries at once: under a stream of short writes (a busy web server's
requests, each a transaction) a worker's claim lost to newcomers for seconds, and
deliveries due at once waited that long to start.

Here every write (each transaction, from its BEGIN to its end, and each write outside
one) first takes an exclusive ``flock`` on a file beside the database (``NAME-writer``),
trying every 0.5 to 2 ms: whoever waits is at most that late when the lock frees,
however long it has waited. Within a process one writer at a time tries the file; the
others wait on a plain lock, without polling. A writer that waits longer than the connection's
``timeout`` gets "database is locked", as from SQLite. SQLite's own lock and busy
timeout stay behind it, for writers that do not come through here (the ``sqlite3``
shell, another program).

    DATABASES["default"]["ENGINE"] = "workflow.sqlite3"   # config/settings.py does
"""

import fcntl
import os
import threading
import time

from django.db.backends.sqlite3 import base

FIRST_TRY, LAST_TRY = 0.0005, 0.002  # seconds between tries for the lock
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


_in_process: dict[str, threading.Lock] = {}  # database path -> this process's writers' lock
_in_process_guard = threading.Lock()


def in_process_lock(path):
    """The lock this process's connections to ``path`` take before the ``flock``: one
    thread per process tries the file at a time, the others wait without polling."""
    with _in_process_guard:
        return _in_process.setdefault(path, threading.Lock())


def _forget_locks_after_fork():
    """A forked child may inherit a lock one of its parent's threads held: anew."""
    global _in_process_guard
    _in_process.clear()
    _in_process_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_locks_after_fork)


class WriterLock:
    """An exclusive ``flock`` on ``path``, held by one connection at a time (and, in
    this process, ``in_process_lock(path)`` while it is tried and held)."""

    def __init__(self, path, timeout):
        self.path, self.timeout = path, timeout
        self.pid = os.getpid()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.local = in_process_lock(path)
        self.held = False

    def acquire(self):
        if self.held or self.pid != os.getpid():  # a forked copy never locks
            return
        deadline = time.monotonic() + self.timeout
        if not self.local.acquire(timeout=self.timeout):
            raise base.Database.OperationalError("database is locked")
        delay = FIRST_TRY
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.local.release()
                    raise base.Database.OperationalError("database is locked") from None
                time.sleep(delay)
                delay = min(delay * 2, LAST_TRY)
            else:
                self.held = True
                return

    def release(self):
        if self.held:
            self.held = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            self.local.release()

    def close(self):
        if self.pid == os.getpid():
            self.release()
            os.close(self.fd)


class WriterCursor(base.SQLiteCursorWrapper):
    """Takes the writer lock around a write made outside a transaction."""

    wrapper = None

    def execute(self, query, params=None):
        if not self._outside_transaction(query):
            return super().execute(query, params)
        self.wrapper.writer.acquire()
        try:
            return super().execute(query, params)
        finally:
            self.wrapper.writer.release()

    def executemany(self, query, param_list):
        if not self._outside_transaction(query):
            return super().executemany(query, param_list)
        self.wrapper.writer.acquire()
        try:
            return super().executemany(query, param_list)
        finally:
            self.wrapper.writer.release()

    def _outside_transaction(self, query):
        wrapper = self.wrapper
        return (
            wrapper.writer is not None
            and not wrapper.writer.held
            and query.lstrip()[:7].upper().startswith(WRITES)
        )


class DatabaseWrapper(base.DatabaseWrapper):
    writer = None

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            self.writer = WriterLock(f"{conn_params['database']}-writer", self._timeout())
        return connection

    def _timeout(self):
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=WriterCursor)
        cursor.wrapper = self
        return cursor

    def _start_transaction_under_autocommit(self):
        if self.writer is not None:
            with self.wrap_database_errors:
                self.writer.acquire()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release()
            raise

    def _commit(self):
        try:
            super()._commit()
        finally:
            if not self.connection.in_transaction:  # a failed COMMIT is rolled back next
                self._release()

    def _rollback(self):
        try:
            super()._rollback()
        finally:
            self._release()

    def _close(self):
        try:
            super()._close()
        finally:
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    def _release(self):
        if self.writer is not None:
            self.writer.release()
