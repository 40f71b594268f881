"""Claims and completions in batches (workflow.batch): the guarantees of one-by-one
claims and completions, with fewer statements.

Some tests race threads on their own database connections, so these tests use
``transaction=True``.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.markers import postgresql_only
from workflow import batch, bus, deliveries
from workflow.context import Context
from workflow.models import Delivery, Event, Run
from workflow.registry import registry
from workflow.state import StateStore
from workflow.steps import EventStep

pytestmark = pytest.mark.django_db(transaction=True)
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


def test_claim_many_claims_every_due_pending_delivery_in_one_transaction(noop):
    """claim_many takes each due pending delivery once, with a run each, in a fixed
    number of statements however many there are, and each step's visibility timeout."""
    emit(20)
    ids = list(Delivery.objects.values_list("pk", flat=True))
    assert len(ids) == 40
    with CaptureQueriesContext(connection) as queries:
        claimed = batch.claim_many(ids, "w1")
    assert len(queries) <= 9  # read, 2 steps' updates, read back, insert, begin/commit
    assert sorted(d.pk for d, _ in claimed) == sorted(ids)
    now = timezone.now()
    for delivery, run in claimed:
        row = Delivery.objects.get(pk=delivery.pk)
        assert (row.status, row.attempts, row.claim_token) == (
            Status.RUNNING,
            1,
            delivery.claim_token,
        )
        assert row.enqueued_at is None
        expected = 120 if row.step_name == "Slow" else 60
        assert abs((row.claimed_until - now).total_seconds() - expected) < 5
        assert (run.delivery_id, run.attempt, run.status, run.worker) == (
            delivery.pk,
            1,
            Run.Status.RUNNING,
            "w1",
        )
        assert delivery.event.data == {"n": delivery.event.data["n"]}  # event read with it
    assert batch.claim_many(ids, "w2") == []  # all held: nothing left to claim


def test_claim_many_skips_deliveries_not_due_or_finished(noop):
    """Not due (delayed) and succeeded deliveries are not claimed."""
    (later,) = emit(delay=30)
    (done,) = emit()
    Delivery.objects.filter(pk=done).update(status=Status.SUCCEEDED)
    (due,) = emit()
    claimed = batch.claim_many([later, done, due])
    assert [d.pk for d, _ in claimed] == [due]
    assert Delivery.objects.get(pk=later).status == Status.PENDING


def test_claim_many_takes_presumed_dead_and_fifo_deliveries_through_claim(noop, steps):
    """A presumed-dead run is interrupted and its delivery claimed again as by claim();
    a fifo delivery waits behind an earlier one of its group."""
    queue = {"type": "fifo", "message_group_id": "g"}
    steps.add(EventStep(name="Fifo", subscribes=["f"], infrastructure={"queue": queue}), handler)
    (dead,) = emit()
    first = batch.claim_many([dead])[0][1]
    Delivery.objects.filter(pk=dead).update(claimed_until=timezone.now() - timedelta(seconds=1))
    one, two = (Delivery.objects.get(event=bus.emit("f", {"g": "a"})).pk for _ in range(2))
    claimed = {d.pk: (d, run) for d, run in batch.claim_many([dead, one, two])}
    assert set(claimed) == {dead, one}
    assert claimed[dead][0].attempts == 2
    assert Run.objects.get(pk=first.pk).status == Run.Status.INTERRUPTED


def test_racing_claimers_never_hold_one_delivery_twice(noop):
    """Four threads claiming the same 30 deliveries at once: each is claimed exactly once."""
    ids = emit(30)
    results, barrier = [], threading.Barrier(4)

    def claimer(name):
        barrier.wait()
        try:
            results.extend((d.pk, name) for d, _ in batch.claim_many(ids, name))
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


def attempt(delivery, run, body=None):
    """Run ``body(ctx)`` as a background attempt of ``delivery``; (delivery, run, write)."""
    ctx = Context(registry.get(delivery.step_name), delivery.trace_id, held=True)
    if body:
        body(ctx)
    return delivery, run, ctx.commit if ctx.holds_writes() else None


def test_complete_many_records_bare_attempts_in_two_updates(noop):
    """Attempts that hold no writes succeed together: delivery and run rows both."""
    claimed = batch.claim_many(emit(10))
    with CaptureQueriesContext(connection) as queries:
        errors = batch.complete_many([attempt(d, r) for d, r in claimed])
    assert errors == [None] * 10
    assert len(queries) <= 6  # begin, savepoint, 2 updates, release, commit
    assert set(Delivery.objects.filter(step_name="Noop").values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    assert set(Run.objects.values_list("status", flat=True)) == {Run.Status.SUCCEEDED}
    row = Delivery.objects.filter(step_name="Noop").first()
    assert (row.claim_token, row.claimed_until) == (None, None) and row.finished_at


def test_complete_many_undoes_only_the_attempt_that_lost_its_claim_or_failed_to_write(noop):
    """Each attempt is all or nothing: one whose claim was taken over gets ClaimLost, one
    whose held writes raise gets that error, and neither's writes land; the others'
    writes and success are recorded."""
    claimed = batch.claim_many(emit(4))

    def writes(n):
        return lambda ctx: (ctx.state.set("batch", str(n), n), ctx.emit("t.done", {"n": n}))

    def breaks(ctx):
        ctx.state.set("batch", "broken", 1)
        # fails when the commit applies it to the value written meanwhile (below)
        ctx.state.update("other", "x", lambda value: 1 if value is None else 1 / 0)

    attempts = [
        attempt(*claimed[0], writes(0)),
        attempt(*claimed[1], writes(1)),
        attempt(*claimed[2], breaks),
        attempt(*claimed[3]),
    ]
    Delivery.objects.filter(pk=claimed[1][0].pk).update(claim_token=None)  # taken over
    StateStore().set("other", "x", 5)
    errors = batch.complete_many(attempts)
    assert errors[0] is None and errors[3] is None
    assert isinstance(errors[1], deliveries.ClaimLost)
    assert isinstance(errors[2], ZeroDivisionError)
    statuses = dict(Delivery.objects.filter(step_name="Noop").values_list("pk", "status"))
    assert [statuses[d.pk] for d, _ in claimed] == [
        Status.SUCCEEDED,
        Status.RUNNING,
        Status.RUNNING,
        Status.SUCCEEDED,
    ]
    assert StateStore().get_group("batch") == {"0": 0}
    assert StateStore().get("other", "x") == 5
    assert list(Event.objects.filter(topic="t.done").values_list("data", flat=True)) == [{"n": 0}]
    assert (
        list(
            Run.objects.filter(delivery_id__in=[d.pk for d, _ in claimed]).values_list(
                "status", flat=True
            )
        ).count(Run.Status.SUCCEEDED)
        == 2
    )


def test_complete_many_falls_back_to_one_by_one_when_a_bare_attempt_lost_its_claim(noop):
    """A bare batch in which one delivery was taken over is undone and redone one by one:
    the others succeed, that one gets ClaimLost."""
    claimed = batch.claim_many(emit(3))
    Delivery.objects.filter(pk=claimed[0][0].pk).update(claim_token=None)
    errors = batch.complete_many([attempt(d, r) for d, r in claimed])
    assert isinstance(errors[0], deliveries.ClaimLost) and errors[1:] == [None, None]
    assert Run.objects.get(pk=claimed[0][1].pk).status == Run.Status.RUNNING
    assert Run.objects.get(pk=claimed[1][1].pk).status == Run.Status.SUCCEEDED


@postgresql_only("SQLite claims through the ORM")
def test_on_postgresql_a_claim_is_one_statement_that_does_not_wait_for_the_disk(noop):
    """The claim's update, its runs and the read of what it took, with the events, are
    one statement, and its transaction commits asynchronously."""
    ids = emit(5)
    with transaction.atomic():  # to look at the claim's transaction from inside
        with CaptureQueriesContext(connection) as queries:
            claimed = batch.claim_many(ids, "w1")
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "off"
    assert len(queries) == 1
    assert sorted(d.pk for d, _ in claimed) == sorted(ids)
    for delivery, run in claimed:
        stored = Run.objects.get(pk=run.pk)
        assert (stored.delivery_id, stored.attempt, stored.worker) == (delivery.pk, 1, "w1")
        assert delivery.event.data == Event.objects.get(pk=delivery.event_id).data
        assert delivery.claim_token == Delivery.objects.get(pk=delivery.pk).claim_token
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # only the claim's own transaction
