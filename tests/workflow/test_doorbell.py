"""The pusher's doorbell (workflow.doorbell): committed jobs end the ORM broker's wait at
once; a ring is a hint that loses nothing when nobody listens."""

import socket
import threading
import time

import pytest
from django.db import transaction

from workflow import bus, doorbell
from workflow.steps import EventStep


@pytest.fixture
def bell(tmp_path, monkeypatch):
    """A listener in a folder of the test's own (as a pusher would have)."""
    monkeypatch.setattr(doorbell, "folder", lambda alias="default": tmp_path)
    listener = doorbell.Listener(tmp_path)
    yield listener
    listener.close()


def test_a_ring_ends_the_wait_at_once(bell):
    rung = []
    waiting = threading.Thread(target=lambda: rung.append(bell.wait(30)))
    started = time.monotonic()
    waiting.start()
    time.sleep(0.05)
    assert doorbell.ring() == 1
    waiting.join(10)
    assert rung == [True]
    assert time.monotonic() - started < 10  # not the 30 s timeout


def test_without_a_ring_the_wait_lasts_its_timeout_and_says_so(bell):
    assert bell.wait(0.05) is False


def test_rings_that_came_meanwhile_are_spent_by_the_next_wait(bell):
    for _ in range(3):
        doorbell.ring()
    assert bell.wait(0) is True
    assert bell.wait(0) is False


def test_a_socket_left_by_a_dead_process_is_removed_by_the_next_ring(bell, tmp_path):
    stale = tmp_path / "999999-dead.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()  # its file stays, nobody behind it
    assert doorbell.ring() == 1  # the live one
    assert not stale.exists()
    assert bell.wait(0) is True


def test_a_ring_with_no_pusher_on_this_machine_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(doorbell, "folder", lambda alias="default": tmp_path / "none")
    assert doorbell.ring() == 0


@pytest.mark.django_db(transaction=True)
def test_jobs_ring_once_committed_and_not_when_rolled_back(bell, steps):
    """The ORM broker's jobs ring the pusher after their commit; an emit whose
    transaction rolls back sends no job, and rings nothing."""
    steps.add(EventStep(name="A", subscribes=["t"]), lambda input, ctx: None)
    with pytest.raises(RuntimeError), transaction.atomic():
        bus.emit("t", {})
        raise RuntimeError("rolled back")
    assert bell.wait(0) is False
    with transaction.atomic():
        bus.emit("t", {})
        assert bell.wait(0) is False  # not yet: the jobs are not committed
    assert bell.wait(0) is True


def test_a_listener_closed_removes_its_socket_and_its_empty_folder(tmp_path):
    folder = tmp_path / "bells"
    listener = doorbell.Listener(folder)
    assert listener.path.exists()
    listener.close()
    assert not folder.exists()


def test_a_process_that_exits_removes_its_socket(tmp_path):
    """A pusher is a multiprocessing child, which ends with os._exit: its listener
    is closed by multiprocessing's finalizers all the same."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    child = context.Process(target=_listen_once, args=(tmp_path / "bells",))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert not (tmp_path / "bells").exists() or not list((tmp_path / "bells").iterdir())


def _listen_once(folder):
    doorbell.folder = lambda alias="default": folder
    doorbell._listeners.clear()
    assert doorbell.listener() is not None
    assert list(folder.glob("*.sock"))
