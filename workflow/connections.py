"""Pooled database connections given back as soon as a thread's work with them is done.

With a pool (PostgreSQL, ``OPTIONS["pool"]``), Django hands a thread a connection at its
first query and takes it back only when the connection is closed. A handler that reads
state, then waits on a mail server (or hangs), would hold one the whole time, and a few
such handlers would hold them all. So the runtime's own reads and writes made for a
handler give the connection back when no transaction is open: the next query takes
one from the pool again, a moment's work.

A worker's handler thread tidies its connections before and after each attempt, as
Django does around a request (``tidy``), except that it keeps a SQLite connection
while it is usable: a new one costs about 0.8 ms of CPU (the file, its pragmas, the
functions Django registers on it) on every attempt, and a worker's threads live long.
"""

from django.db import connection, connections


def give_back():
    """Return this thread's pooled connection, unless a transaction holds it."""
    if getattr(connection, "pool", None) and not connection.in_atomic_block:
        connection.close()


def tidy():
    """Django's ``close_old_connections()`` for a worker's handler thread: a connection
    that is broken, left outside autocommit or past its age is closed (a pooled one goes
    back to the pool), except a SQLite one that is usable and idle, which is kept."""
    for conn in connections.all(initialized_only=True):
        kept = (
            conn.vendor == "sqlite"
            and conn.connection is not None
            and conn.get_autocommit()
            and not conn.errors_occurred
        )
        if not kept:
            conn.close_if_unusable_or_obsolete()
