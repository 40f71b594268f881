"""Supervised attempts in a worker's handler pool: a lease renewed while the handler
runs, a handler timeout that frees the slot, async handlers cancelled, a pool of stuck
threads retired, and fifo successors woken by the recorder.

The pool's threads use their own database connections (``transaction=True``).
"""

import asyncio
import threading
import time

import pytest
from django.utils import timezone

from workflow import bus
from workflow.models import Delivery, LogEntry, Run
from workflow.state import StateStore
from workflow.steps import EventStep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.store]
Status = Delivery.Status


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)
    return result


def delivery_of(topic, data=None):
    return Delivery.objects.get(event=bus.emit(topic, data or {})).pk


def status_of(pk):
    return Delivery.objects.get(pk=pk).status


@pytest.fixture
def release():
    """An event hung handlers wait on; set at the end so no thread is left blocked, and
    given a moment for their late outcomes to be dropped before the tables are emptied."""
    gate = threading.Event()
    yield gate
    gate.set()
    time.sleep(0.3)


def add_hanging_step(steps, release, timeout, queue=None):
    """Hangs, subscribed to 'hang': its handler waits for ``release``; no retry unless
    ``queue`` says otherwise."""
    infrastructure = {"handler": {"timeout": timeout}, "queue": queue or {"max_retries": 0}}
    steps.add(
        EventStep(name="Hangs", subscribes=["hang"], infrastructure=infrastructure),
        lambda input, ctx: release.wait(30),
    )


def let_go(release, count):
    """Release ``count`` abandoned handlers and wait until each late outcome is dropped."""
    release.set()
    wait_for(lambda: LogEntry.objects.filter(message="Attempt discarded").count() == count)


def test_a_handler_slower_than_its_lease_runs_once_its_lease_renewed(steps, new_pool):
    """visibility_timeout 1 s, a 2.5 s handler: the lease is renewed while it runs (never
    past), the delivery is never claimable elsewhere, and the handler runs once."""
    calls = []

    def slow(input, ctx):
        calls.append(1)
        time.sleep(2.5)

    queue_policy = {"visibility_timeout": 1, "max_retries": 3}
    steps.add(
        EventStep(name="Slow", subscribes=["s"], infrastructure={"queue": queue_policy}), slow
    )
    pk = delivery_of("s")
    pool = new_pool(2)
    pool.submit(pk, wait=1)
    wait_for(lambda: calls)
    first = Delivery.objects.get(pk=pk).claimed_until
    seen = set()
    while status_of(pk) == Status.RUNNING:
        row = Delivery.objects.get(pk=pk)
        if row.status == Status.RUNNING:
            seen.add(row.claimed_until)
            assert row.claimed_until > timezone.now()  # the lease never ran out meanwhile
        time.sleep(0.1)
    assert status_of(pk) == Status.SUCCEEDED
    assert len(seen) >= 3 and max(seen) > first  # renewed, several times
    assert calls == [1]
    assert list(Run.objects.filter(delivery_id=pk).values_list("status", flat=True)) == [
        Run.Status.SUCCEEDED
    ]


def test_a_sync_handler_past_its_timeout_is_failed_and_its_slot_freed(steps, release, new_pool):
    """A handler that hangs, with a 0.5 s timeout and no retries: the delivery is dead,
    "timed out after 0.5 s"; its thread is abandoned and a new one takes the slot, so
    the next delivery runs on a pool of one thread."""
    add_hanging_step(steps, release, timeout=0.5)
    steps.add(
        EventStep(name="Quick", subscribes=["quick"]),
        lambda input, ctx: ctx.state.set("quick", "done", True),
    )
    hung, quick = delivery_of("hang"), delivery_of("quick")
    pool = new_pool(1)
    assert pool.submit(hung, wait=1)
    assert pool.submit(quick, wait=5)  # a slot frees up once the hung one times out
    wait_for(lambda: status_of(quick) == Status.SUCCEEDED)
    dead = Delivery.objects.get(pk=hung)
    assert dead.status == Status.DEAD
    assert dead.last_error == "HandlerTimeout: timed out after 0.5 s"
    run = Run.objects.get(delivery_id=hung)
    assert (run.status, run.error) == (Run.Status.FAILED, dead.last_error)
    assert LogEntry.objects.filter(message="Handler timed out", step_name="Hangs").exists()
    assert len(pool.abandoned) == 1
    let_go(release, 1)  # the abandoned handler returns at last: its outcome is dropped
    assert status_of(hung) == Status.DEAD


def test_a_timed_out_attempt_is_retried_by_its_queue_policy(steps, release, new_pool):
    """With retries left, a timed-out attempt is pending again after its backoff."""
    retries = {"max_retries": 2, "backoff": {"initial": 60, "jitter": False}}
    add_hanging_step(steps, release, timeout=0.3, queue=retries)
    pk = delivery_of("hang")
    pool = new_pool(2)
    pool.submit(pk, wait=1)
    wait_for(lambda: Delivery.objects.get(pk=pk).last_error)
    row = Delivery.objects.get(pk=pk)
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    assert "timed out after 0.3 s" in row.last_error
    let_go(release, 1)


def test_an_async_handler_past_its_timeout_is_cancelled(steps, new_pool):
    """An async handler awaiting past its timeout is cancelled (it sees CancelledError):
    the attempt times out and its thread is not abandoned."""
    cancelled = threading.Event()

    async def waits(input, ctx):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    steps.add(
        EventStep(
            name="AsyncHangs",
            subscribes=["ahang"],
            infrastructure={"handler": {"timeout": 0.3}, "queue": {"max_retries": 0}},
        ),
        waits,
    )
    pk = delivery_of("ahang")
    pool = new_pool(1)
    pool.submit(pk, wait=1)
    wait_for(lambda: status_of(pk) == Status.DEAD)
    assert cancelled.is_set()
    assert "timed out after 0.3 s" in Delivery.objects.get(pk=pk).last_error
    assert pool.abandoned == []


def test_a_pool_whose_threads_are_mostly_stuck_retires(steps, release, new_pool):
    """Three of four threads stuck in handlers that timed out: the pool retires (its
    worker would hand back its work and make way for a new one)."""
    add_hanging_step(steps, release, timeout=0.2)
    pool = new_pool(4)
    for _ in range(3):
        pool.submit(delivery_of("hang"), wait=1)
    wait_for(lambda: pool.retired)
    wait_for(lambda: Delivery.objects.filter(status=Status.DEAD).count() == 3)
    let_go(release, 3)


def test_a_hung_handler_does_not_hold_back_another_steps_deliveries(steps, release, new_pool):
    """While handlers of one step hang, 20 deliveries of another step all succeed on
    the same pool of two threads."""
    add_hanging_step(steps, release, timeout=0.3)
    steps.add(
        EventStep(name="Count", subscribes=["count"]),
        lambda input, ctx: ctx.state.set("counted", str(input["n"]), 1),
    )
    pool = new_pool(2)
    pool.retire = lambda: None  # stuck threads pile up here; the test is about slots
    for _ in range(2):
        pool.submit(delivery_of("hang"), wait=1)
    for n in range(20):
        assert pool.submit(delivery_of("count", {"n": n}), wait=5)
    wait_for(lambda: len(StateStore().get_group("counted")) == 20)
    let_go(release, 2)


def test_the_recorder_wakes_the_next_delivery_of_a_fifo_group(steps, new_pool):
    """Once a fifo delivery's success is recorded, the worker wakes the next of its group."""
    fifo = {"type": "fifo", "message_group_id": "g"}
    steps.add(
        EventStep(name="Fifo", subscribes=["f"], infrastructure={"queue": fifo}), lambda i, c: None
    )
    first, second = delivery_of("f", {"g": "a"}), delivery_of("f", {"g": "a"})
    woken = []
    pool = new_pool(1)
    pool.wake = woken.extend  # queue.wake_soon in a worker
    pool.submit(first, wait=1)
    wait_for(lambda: woken)
    assert woken == [second]


def test_a_join_whose_handler_hangs_times_out_and_its_retry_runs_it_once_with_every_part(
    steps, release, new_pool
):
    """A join's handler is supervised as any: the completing arrival's attempt hangs past
    its 0.3 s timeout, fails, and its retry runs the handler again with every topic's
    data; the join fires once (no second run from the arrivals, nothing handed to the
    timeout topic)."""
    topics = ["a.done", "b.done"]
    calls = []

    def confirm(input, ctx):
        calls.append(input)
        if len(calls) == 1:
            release.wait(30)  # the first attempt hangs

    policy = {
        "handler": {"timeout": 0.3},
        "queue": {"max_retries": 1, "backoff": {"initial": 0.1, "jitter": False}},
    }
    join = {"key": "id", "timeout": 60, "on_timeout": "x.timed_out"}
    steps.add(
        EventStep(name="Confirm", subscribes=topics, join=join, infrastructure=policy), confirm
    )
    steps.add(EventStep(name="Late", subscribes=["x.timed_out"]), lambda input, ctx: None)
    first, completing = delivery_of("a.done", {"id": 7}), delivery_of("b.done", {"id": 7})
    pool = new_pool(2)
    pool.submit(first, wait=1)
    wait_for(lambda: status_of(first) == Status.SUCCEEDED)  # it waits for b.done
    pool.submit(completing, wait=1)
    wait_for(lambda: Delivery.objects.get(pk=completing).attempts == 1 and calls)
    wait_for(lambda: status_of(completing) == Status.PENDING)  # timed out, its retry due
    assert "timed out after 0.3 s" in Delivery.objects.get(pk=completing).last_error
    time.sleep(0.2)
    pool.submit(completing, wait=1)
    wait_for(lambda: status_of(completing) == Status.SUCCEEDED)
    assert calls == [{"a.done": {"id": 7}, "b.done": {"id": 7}}] * 2
    assert not Delivery.objects.filter(step_name="Late").exists()
    let_go(release, 1)
