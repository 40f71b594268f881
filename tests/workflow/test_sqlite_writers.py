"""workflow.sqlite3: every write takes the writer lock (a flock beside the database)
first, so writers wait for each other there, in turn, rather than in SQLite's busy
handler; and a writer that waits past the timeout gets "database is locked"."""

import fcntl
import os
import threading

import pytest
from django.db import OperationalError, connection, transaction

from workflow.models import StateEntry
from workflow.sqlite3.base import WriterLock

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="SQLite only: the embedded default's backend"
    ),
]


def lock_is_free():
    """Whether another holder could take the writer lock now."""
    fd = os.open(f"{connection.settings_dict['NAME']}-writer", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def put(key):
    StateEntry.objects.create(group="g", key=key, value=1)


def test_a_transaction_holds_the_writer_lock_from_begin_to_commit():
    assert lock_is_free()
    with transaction.atomic():
        put("a")
        assert not lock_is_free()
    assert lock_is_free()


def test_a_rolled_back_transaction_frees_the_lock():
    with pytest.raises(RuntimeError), transaction.atomic():
        put("a")
        raise RuntimeError("the handler failed")
    assert lock_is_free()
    assert not StateEntry.objects.exists()


def test_a_write_outside_a_transaction_takes_the_lock_for_its_statement(monkeypatch):
    """Outside a transaction, an UPDATE waits for the writer lock; a read does not."""
    put("a")
    holder = WriterLock(f"{connection.settings_dict['NAME']}-writer", timeout=5)
    holder.acquire()
    done = threading.Event()

    def update():
        try:
            StateEntry.objects.filter(key="a").update(value=2)
            done.set()
        finally:
            connection.close()

    writer = threading.Thread(target=update)
    writer.start()
    assert StateEntry.objects.get(key="a").value == 1  # reads go on meanwhile
    assert not done.wait(0.3), "the write went past the writer lock"
    holder.release()
    assert done.wait(5)
    writer.join()
    holder.close()
    assert StateEntry.objects.get(key="a").value == 2


def test_a_writer_waiting_past_the_timeout_gets_database_is_locked():
    """As SQLite answers a writer that waited its busy timeout out."""
    holder = WriterLock(f"{connection.settings_dict['NAME']}-writer", timeout=5)
    holder.acquire()
    errors = []

    def write():
        connection.ensure_connection()
        connection.writer.timeout = 0.2
        try:
            with transaction.atomic():
                put("b")
        except OperationalError as exc:
            errors.append(str(exc))
        finally:
            connection.close()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)
    holder.close()
    assert errors == ["database is locked"]
    assert not StateEntry.objects.filter(key="b").exists()
