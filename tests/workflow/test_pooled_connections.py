"""With a connection pool (PostgreSQL), a thread gives its connection back as soon as
its database work is done, so handlers that wait do not hold the pool's connections."""

import pytest
from django.db import connection

from workflow.connections import tidy
from workflow.logs import StepLogger
from workflow.models import LogEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pooled(monkeypatch):
    """This thread's connection behaves as a pooled one (``connection.pool`` is set)."""
    monkeypatch.setattr(connection, "pool", object(), raising=False)


def test_a_stored_log_line_returns_a_pooled_connection(pooled):
    """A handler logs, then waits: once the line is stored, it holds no connection."""
    StepLogger("Step", "trace-1").info("Sending welcome email", userId="u1")
    assert LogEntry.objects.filter(message="Sending welcome email").exists()
    connection.ensure_connection()  # the query above took one again
    StepLogger("Step", "trace-1").info("Another line")
    assert connection.connection is None


def test_without_a_pool_the_connection_is_kept():
    """SQLite and PostgreSQL without a pool: nothing changes."""
    connection.ensure_connection()
    StepLogger("Step", "trace-1").info("A line")
    assert connection.connection is not None


def test_a_handler_thread_keeps_an_idle_sqlite_connection_between_attempts(settings):
    """tidy() (before and after each attempt) keeps a usable SQLite connection where
    Django's close_old_connections() would close it (CONN_MAX_AGE 0), and closes one
    that saw an error or was left outside autocommit."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: other databases close as Django does")
    connection.ensure_connection()
    kept = connection.connection
    tidy()
    assert connection.connection is kept
    connection.errors_occurred = True
    tidy()
    assert connection.connection is None  # closed as Django would: the next is new
    connection.ensure_connection()
    connection.set_autocommit(False)
    tidy()
    assert connection.connection is None
