"""HandlerPool: bounded handler threads, hand-back on shutdown and when no slot frees up,
leases renewed while handlers run, timeouts kept, a worker of stuck threads retired.

The pool's threads use their own database connections, so these tests use
``transaction=True``; each test lets its handlers finish before it ends.
"""

import os
import threading
import time

import pytest

from workflow import bus, executor, queue
from workflow.models import Delivery, LogEntry, Run
from workflow.state import StateStore
from workflow.steps import EventStep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.store]
Status = Delivery.Status


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


class Gate:
    """A step handler that blocks until ``open()``; counts the calls that started."""

    def __init__(self):
        self.opened = threading.Event()
        self.started = 0
        self.lock = threading.Lock()

    def __call__(self, input, ctx):
        with self.lock:
            self.started += 1
        ctx.state.set("gate", str(input["n"]), "done")
        if not self.opened.wait(10):
            raise RuntimeError("gate never opened")

    def open(self):
        self.opened.set()


@pytest.fixture
def gate(steps):
    handler = Gate()
    steps.add(EventStep(name="Gated", subscribes=["gated"]), handler)
    yield handler
    handler.open()  # never leave a handler thread blocked


def new_delivery(n):
    return Delivery.objects.get(event=bus.emit("gated", {"n": n})).pk


def status_of(delivery_id):
    return Delivery.objects.get(pk=delivery_id).status


def settle(pool):
    """Wait until every handler thread of ``pool`` has finished and freed its slot."""
    for _ in range(pool.threads):
        assert pool.slots.acquire(timeout=10), "a handler thread never finished"
    for _ in range(pool.threads):
        pool.slots.release()


def test_submit_is_refused_only_while_every_slot_is_busy(gate, new_pool):
    """submit() returns True while a slot is free, False when both stay busy past the wait."""
    pool = new_pool(2)
    first, second, third = new_delivery(1), new_delivery(2), new_delivery(3)
    assert pool.submit(first, wait=1) is True
    assert pool.submit(second, wait=1) is True
    wait_for(lambda: gate.started == 2)
    started = time.monotonic()
    assert pool.submit(third, wait=0.2) is False
    assert time.monotonic() - started >= 0.2
    assert status_of(third) == Status.PENDING
    gate.open()
    assert pool.submit(third, wait=5) is True
    wait_for(lambda: all(status_of(d) == Status.SUCCEEDED for d in (first, second, third)))
    settle(pool)
    assert gate.started == 3


def test_drain_hands_back_deliveries_still_running_after_grace(gate, new_pool):
    """drain() waits the grace, then hands back running deliveries and returns how many."""
    pool = new_pool(2)
    first, second = new_delivery(1), new_delivery(2)
    pool.submit(first, wait=1)
    pool.submit(second, wait=1)
    wait_for(lambda: gate.started == 2)
    started = time.monotonic()
    assert pool.drain(0.2) == 2
    assert time.monotonic() - started >= 0.2
    for delivery_id in (first, second):
        delivery = Delivery.objects.get(pk=delivery_id)
        assert (delivery.status, delivery.attempts) == (Status.PENDING, 0)
        assert delivery.enqueued_at is None
        run = Run.objects.get(delivery_id=delivery_id)
        assert run.status == Run.Status.INTERRUPTED
        assert run.error == "Worker stopped; handed back"
    gate.open()  # the handed-back handlers finish, but may no longer complete
    settle(pool)
    wait_for(lambda: LogEntry.objects.filter(message="Attempt discarded").count() == 2)
    reasons = set(LogEntry.objects.values_list("fields__reason", flat=True))
    assert "its worker stopped; handed back before it finished" in reasons
    assert {status_of(first), status_of(second)} == {Status.PENDING}
    assert StateStore().get_group("gate") == {}
    assert Run.objects.filter(status=Run.Status.INTERRUPTED).count() == 2


def test_drain_returns_zero_when_handlers_finish_within_grace(gate, new_pool):
    """drain() hands back nothing when the running handlers finish within the grace."""
    pool = new_pool(2)
    delivery_id = new_delivery(1)
    pool.submit(delivery_id, wait=1)
    wait_for(lambda: gate.started == 1)
    threading.Timer(0.1, gate.open).start()
    assert pool.drain(5) == 0
    wait_for(lambda: status_of(delivery_id) == Status.SUCCEEDED)
    settle(pool)
    assert StateStore().get_group("gate") == {"1": "done"}


def test_a_job_hands_the_delivery_back_when_no_slot_frees_up(gate, monkeypatch, settings, new_pool):
    """The job (queue.deliver) on a full pool clears enqueued_at (back to the sweeper)
    and runs nothing."""
    settings.WORKFLOW = {**settings.WORKFLOW, "SLOT_WAIT": 0.1}
    pool = new_pool(1)
    pool.pid = os.getpid()
    monkeypatch.setattr(executor, "_pool", pool)
    busy, waiting = new_delivery(1), new_delivery(2)
    assert Delivery.objects.get(pk=waiting).enqueued_at is not None
    assert queue.deliver(busy) == [busy]
    wait_for(lambda: gate.started == 1)
    assert queue.deliver(waiting) == [waiting]
    delivery = Delivery.objects.get(pk=waiting)
    assert delivery.enqueued_at is None
    assert (delivery.status, delivery.attempts) == (Status.PENDING, 0)
    assert not Run.objects.filter(delivery_id=waiting).exists()
    gate.open()
    wait_for(lambda: status_of(busy) == Status.SUCCEEDED)
    settle(pool)
    assert gate.started == 1


def test_a_burst_of_deliveries_runs_each_once(steps, new_pool):
    """40 deliveries woken at once on a pool of 4 threads (claimed and recorded in
    batches): each handler runs once, every delivery and run succeeds, held writes land."""
    seen, lock = [], threading.Lock()

    def count(input, ctx):
        with lock:
            seen.append(input["n"])
        ctx.state.set("burst", str(input["n"]), True)

    steps.add(EventStep(name="Counted", subscribes=["burst"]), count)
    ids = [Delivery.objects.get(event=bus.emit("burst", {"n": n})).pk for n in range(40)]
    pool = new_pool(4)
    for delivery_id in ids:
        assert pool.submit(delivery_id, wait=10)
    wait_for(lambda: Delivery.objects.filter(pk__in=ids, status=Status.SUCCEEDED).count() == 40)
    settle(pool)
    assert sorted(seen) == list(range(40))
    assert Run.objects.filter(delivery_id__in=ids, status=Run.Status.SUCCEEDED).count() == 40
    assert len(StateStore().get_group("burst")) == 40


def test_a_job_of_several_deliveries_hands_back_those_no_slot_frees_up_for(
    gate, monkeypatch, settings, new_pool
):
    """A job of a, b, c on a pool of 2 threads runs a and b, hands c back to the sweeper."""
    settings.WORKFLOW = {**settings.WORKFLOW, "SLOT_WAIT": 0.1}
    pool = new_pool(2)
    pool.pid = os.getpid()
    monkeypatch.setattr(executor, "_pool", pool)
    ids = [new_delivery(n) for n in (1, 2, 3)]
    assert queue.deliver(*ids) == ids
    wait_for(lambda: gate.started == 2)
    left = Delivery.objects.get(pk=ids[2])
    assert left.enqueued_at is None
    assert (left.status, left.attempts) == (Status.PENDING, 0)
    gate.open()
    wait_for(lambda: all(status_of(pk) == Status.SUCCEEDED for pk in ids[:2]))
    settle(pool)
