"""Pooled database connections given back as soon as a thread's work with them is done.

With a pool (PostgreSQL, ``OPTIONS["pool"]``), Django hands a thread a connection at its
first query and takes it back only when the connection is closed. A handler that reads
state, then waits on a mail server (or hangs), would hold one the whole time, and a few
such handlers would hold them all. So the runtime's own reads and writes made for a
handler give the connection back when no transaction is open: the next query takes
one from the pool again, a moment's work.
"""

from django.db import connection


def give_back():
    """Return this thread's pooled connection, unless a transaction holds it."""
    if getattr(connection, "pool", None) and not connection.in_atomic_block:
        connection.close()
