"""The store's claims and recorded outcomes in batches: the guarantees of one-by-one
claims and completions, with fewer statements.

Some tests race threads on their own database connections, so these tests use
``transaction=True``.
"""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.markers import postgresql_only
from workflow import bus
from workflow.context import Context
from workflow.models import Delivery, Event, Run
from workflow.registry import registry
from workflow.state import StateStore
from workflow.steps import EventStep
from workflow.store import Outcome, store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.store]
Status = Delivery.Status


def handler(input, ctx):
    pass


@pytest.fixture
def noop(steps):
    steps.add(EventStep(name="Noop", subscribes=["t"], emits=["t.done"]), handler)
    steps.add(
        EventStep(
            name="Slow", subscribes=["t"], infrastructure={"queue": {"visibility_timeout": 120}}
        ),
        handler,
    )
    return steps


def emit(n=1, **options):
    """``n`` events on 't'; the ids of their deliveries to Noop."""
    events = [bus.emit("t", {"n": i}, **options) for i in range(n)]
    return list(
        Delivery.objects.filter(event__in=events, step_name="Noop").values_list("pk", flat=True)
    )


def test_claim_claims_every_due_pending_delivery_in_one_transaction(noop):
    """claim() takes each due pending delivery once, with a run each, in a fixed number
    of statements however many there are, each with its step's lease, for its worker."""
    emit(20)
    ids = list(Delivery.objects.values_list("pk", flat=True))
    assert len(ids) == 40
    with CaptureQueriesContext(connection) as queries:
        claimed = store.claim(ids, "w1")
    assert len(queries) <= 9  # read, 2 steps' updates, read back, insert, begin/commit
    assert sorted(c.pk for c in claimed) == sorted(ids)
    now = timezone.now()
    for claim in claimed:
        delivery, run = claim.delivery, claim.run
        row = Delivery.objects.get(pk=delivery.pk)
        assert (row.status, row.attempts, row.claim_token, row.claimed_by) == (
            Status.RUNNING,
            1,
            delivery.claim_token,
            "w1",
        )
        assert row.enqueued_at is None
        expected = 120 if row.step_name == "Slow" else 10  # its visibility_timeout, or LEASE
        assert abs((row.claimed_until - now).total_seconds() - expected) < 5
        assert (run.delivery_id, run.attempt, run.status, run.worker) == (
            delivery.pk,
            1,
            Run.Status.RUNNING,
            "w1",
        )
        assert delivery.event.data == {"n": delivery.event.data["n"]}  # event read with it
    assert store.claim(ids, "w2") == []  # all held: nothing left to claim


def test_claim_skips_deliveries_not_due_or_finished(noop):
    """Not due (delayed) and succeeded deliveries are not claimed."""
    (later,) = emit(delay=30)
    (done,) = emit()
    Delivery.objects.filter(pk=done).update(status=Status.SUCCEEDED)
    (due,) = emit()
    claimed = store.claim([later, done, due])
    assert [c.pk for c in claimed] == [due]
    assert Delivery.objects.get(pk=later).status == Status.PENDING


def test_claim_takes_presumed_dead_and_fifo_deliveries_one_by_one(noop, steps):
    """A delivery whose lease ran out has its run interrupted and is claimed again; a
    fifo delivery waits behind an earlier one of its group."""
    queue = {"type": "fifo", "message_group_id": "g"}
    steps.add(EventStep(name="Fifo", subscribes=["f"], infrastructure={"queue": queue}), handler)
    (dead,) = emit()
    first = store.claim([dead])[0].run
    Delivery.objects.filter(pk=dead).update(claimed_until=timezone.now() - timedelta(seconds=1))
    one, two = (Delivery.objects.get(event=bus.emit("f", {"g": "a"})).pk for _ in range(2))
    claimed = {c.pk: c for c in store.claim([dead, one, two], "w2")}
    assert set(claimed) == {dead, one}
    assert claimed[dead].delivery.attempts == 2
    assert claimed[dead].delivery.claimed_by == "w2"
    assert Run.objects.get(pk=first.pk).status == Run.Status.INTERRUPTED


def test_racing_claimers_never_hold_one_delivery_twice(noop):
    """Four threads claiming the same 30 deliveries at once: each is claimed exactly once."""
    ids = emit(30)
    results, barrier = [], threading.Barrier(4)

    def claimer(name):
        barrier.wait()
        try:
            results.extend((c.pk, name) for c in store.claim(ids, name))
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(pk for pk, _ in results) == sorted(ids)
    assert Run.objects.filter(delivery_id__in=ids).count() == 30
    assert set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        Status.RUNNING
    }


def attempt(claim, body=None):
    """Run ``body(ctx)`` as a successful background attempt of ``claim``; its Outcome."""
    delivery = claim.delivery
    ctx = Context(registry.get(delivery.step_name), delivery.trace_id, held=True)
    if body:
        body(ctx)
    return Outcome.success(claim, ctx.commit if ctx.holds_writes() else None)


def statuses(results):
    return [recorded.status for recorded in results]


def test_record_records_bare_successes_in_two_updates(noop):
    """Attempts that hold no writes succeed together: delivery and run rows both."""
    claimed = store.claim(emit(10))
    with CaptureQueriesContext(connection) as queries:
        results, wake = store.record([attempt(c) for c in claimed])
    assert statuses(results) == [Status.SUCCEEDED] * 10 and wake == []
    assert len(queries) <= 6  # begin, savepoint, 2 updates, release, commit
    assert set(Delivery.objects.filter(step_name="Noop").values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    assert set(Run.objects.values_list("status", flat=True)) == {Run.Status.SUCCEEDED}
    row = Delivery.objects.filter(step_name="Noop").first()
    assert (row.claim_token, row.claimed_until) == (None, None) and row.finished_at


def test_record_undoes_only_the_attempt_that_lost_its_claim_or_failed_to_write(noop):
    """Each attempt is all or nothing: one whose claim was taken over is discarded, one
    whose held writes raise is recorded as that failure (retried), and neither's writes
    land; the others' writes and success are recorded."""
    claimed = store.claim(emit(4))

    def writes(n):
        return lambda ctx: (ctx.state.set("batch", str(n), n), ctx.emit("t.done", {"n": n}))

    def breaks(ctx):
        ctx.state.set("batch", "broken", 1)
        # fails when the commit applies it to the value written meanwhile (below)
        ctx.state.update("other", "x", lambda value: 1 if value is None else 1 / 0)

    attempts = [
        attempt(claimed[0], writes(0)),
        attempt(claimed[1], writes(1)),
        attempt(claimed[2], breaks),
        attempt(claimed[3]),
    ]
    Delivery.objects.filter(pk=claimed[1].pk).update(claim_token=None)  # taken over
    StateStore().set("other", "x", 5)
    results, _ = store.record(attempts)
    assert statuses(results) == [Status.SUCCEEDED, None, Status.PENDING, Status.SUCCEEDED]
    assert results[2].outcome.error == "ZeroDivisionError: division by zero"
    rows = dict(Delivery.objects.filter(step_name="Noop").values_list("pk", "status"))
    assert [rows[c.pk] for c in claimed] == [
        Status.SUCCEEDED,
        Status.RUNNING,
        Status.PENDING,
        Status.SUCCEEDED,
    ]
    assert Run.objects.get(pk=claimed[2].run.pk).error == "ZeroDivisionError: division by zero"
    assert StateStore().get_group("batch") == {"0": 0}
    assert StateStore().get("other", "x") == 5
    assert list(Event.objects.filter(topic="t.done").values_list("data", flat=True)) == [{"n": 0}]
    runs = Run.objects.filter(delivery_id__in=[c.pk for c in claimed])
    assert list(runs.values_list("status", flat=True)).count(Run.Status.SUCCEEDED) == 2


def test_record_falls_back_to_one_by_one_when_a_bare_attempt_lost_its_claim(noop):
    """A bare batch in which one delivery was taken over is undone and redone one by one:
    the others succeed, that one is discarded."""
    claimed = store.claim(emit(3))
    Delivery.objects.filter(pk=claimed[0].pk).update(claim_token=None)
    results, _ = store.record([attempt(c) for c in claimed])
    assert statuses(results) == [None, Status.SUCCEEDED, Status.SUCCEEDED]
    assert Run.objects.get(pk=claimed[0].run.pk).status == Run.Status.RUNNING
    assert Run.objects.get(pk=claimed[1].run.pk).status == Run.Status.SUCCEEDED


@postgresql_only("SQLite claims through the ORM")
def test_on_postgresql_a_claim_is_one_statement_that_does_not_wait_for_the_disk(noop):
    """The claim's update, its runs and the read of what it took, with the events, are
    one statement, and its transaction commits asynchronously."""
    ids = emit(5)
    with transaction.atomic():  # to look at the claim's transaction from inside
        with CaptureQueriesContext(connection) as queries:
            claimed = store.claim(ids, "w1")
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "off"
    assert len(queries) == 1
    assert sorted(c.pk for c in claimed) == sorted(ids)
    for claim in claimed:
        delivery, run = claim.delivery, claim.run
        stored = Run.objects.get(pk=run.pk)
        assert (stored.delivery_id, stored.attempt, stored.worker) == (delivery.pk, 1, "w1")
        assert delivery.event.data == Event.objects.get(pk=delivery.event_id).data
        assert delivery.claim_token == Delivery.objects.get(pk=delivery.pk).claim_token
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # only the claim's own transaction


def test_a_record_whose_transaction_rolled_back_applies_the_held_writes_when_retried(noop):
    """The recorder's transaction fails after applying an attempt's held writes (a
    deadlock, a lost connection): recorded again, the same writes land, once."""
    (claim,) = store.claim(emit(1))

    def writes(ctx):
        ctx.state.update("batch", "count", lambda n: (n or 0) + 1)
        ctx.emit("t.done", {"n": 1})

    outcome = attempt(claim, writes)
    with pytest.raises(RuntimeError), transaction.atomic():
        store.record([outcome])
        raise RuntimeError("the commit failed")
    assert StateStore().get("batch", "count") is None
    results, _ = store.record([outcome])
    assert statuses(results) == [Status.SUCCEEDED]
    assert StateStore().get("batch", "count") == 1
    assert Event.objects.filter(topic="t.done").count() == 1


def test_renewing_extends_only_the_leases_still_held(noop):
    """renew() moves claimed_until forward for the claims still held; one taken over
    (another token) keeps its row as it is."""
    claimed = store.claim(emit(2), "w1")
    Delivery.objects.filter(pk__in=[c.pk for c in claimed]).update(
        claimed_until=timezone.now() + timedelta(seconds=1)
    )
    Delivery.objects.filter(pk=claimed[1].pk).update(claim_token=uuid.uuid4())
    assert store.renew(claimed) == 1
    rows = {d.pk: d.claimed_until for d in Delivery.objects.filter(step_name="Noop")}
    assert rows[claimed[0].pk] > timezone.now() + timedelta(seconds=8)  # the 10 s lease
    assert rows[claimed[1].pk] < timezone.now() + timedelta(seconds=2)
