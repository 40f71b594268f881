"""Database connections across ``fork()``: a child never uses its parent's.

django-q2 forks its sentinel, workers, pusher and monitor from the cluster's process.
On PostgreSQL each process keeps a pool of open connections (``OPTIONS["pool"]``,
psycopg_pool) with threads of its own. A child that inherited the pool would hand out
the parent's sockets: two processes talking on one connection corrupt it, and a child
closing its pool on exit ends the parent's sessions on the server.

So before each fork the forking process closes its pools (they open again on next
use, a moment's work) and the child forgets any pool it still sees; each process
then opens its own connections. django-q2 itself closes the forking thread's
connections before it spawns a process, which returns them to the pool, but that
leaves the pool open.
"""

import os

from django.db import connections

_installed = False


def _pools():
    """Django's PostgreSQL pools of this process, by alias (empty without psycopg)."""
    try:
        from django.db.backends.postgresql.base import DatabaseWrapper
    except ImportError:  # psycopg is not installed: no pools
        return {}
    return DatabaseWrapper._connection_pools


def close_pools():
    """Return this thread's connections and close every pool (before a fork)."""
    connections.close_all()
    pools = _pools()
    for alias in list(pools):
        pool = pools.pop(alias, None)
        if pool is not None:
            pool.close()


def forget_pools():
    """In a new child: drop what it inherited without closing the parent's sockets
    (psycopg only ends a connection on the server from the process that opened it)."""
    _pools().clear()


def install():
    """Close pools around every fork of this process and of its children."""
    global _installed
    if not _installed:
        os.register_at_fork(before=close_pools, after_in_child=forget_pools)
        _installed = True
