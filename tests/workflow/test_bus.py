"""Emit: one event, one delivery per subscriber, and wake-up jobs only after commit
(sent by the bridge, the receiver of event_emitted)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ
from rest_framework import serializers

from tests.markers import postgresql_only
from workflow import InvalidEmit, NotJSON, bridge, bus, queue, signals
from workflow.models import Delivery, Event, Trace
from workflow.steps import ApiStep, EventStep

pytestmark = pytest.mark.store


def handler(input, ctx):
    pass


def subscribe(steps, name, *topics):
    steps.add(EventStep(name=name, subscribes=list(topics)), handler)


def woken_ids():
    """The delivery ids the stored django-q2 jobs carry."""
    jobs = list(OrmQ.objects.all())
    assert all(job.func() == queue.WAKE for job in jobs)
    return sorted(pk for job in jobs for pk in job.args())


@pytest.fixture
def emitted():
    """The (event, deliveries) announced by ``event_emitted``, in order."""
    calls = []

    def receiver(sender, event, deliveries, **kwargs):
        calls.append((event, deliveries))

    signals.event_emitted.connect(receiver)
    try:
        yield calls
    finally:
        signals.event_emitted.disconnect(receiver)


@pytest.mark.django_db
def test_emit_records_one_event_and_a_delivery_per_subscriber(steps):
    """emit() records the event and one delivery for each exact and '*' subscriber."""
    subscribe(steps, "Exact", "user.registered")
    subscribe(steps, "Everything", "*")
    subscribe(steps, "Elsewhere", "order.placed")
    before = timezone.now()
    event = bus.emit("user.registered", {"id": 1}, trace_id="t" * 32, emitted_by="Api")
    assert Event.objects.count() == 1
    event.refresh_from_db()
    assert (event.topic, event.data, event.trace_id, event.emitted_by) == (
        "user.registered",
        {"id": 1},
        "t" * 32,
        "Api",
    )
    rows = Delivery.objects.filter(event=event)
    assert sorted(rows.values_list("step_name", flat=True)) == ["Everything", "Exact"]
    for delivery in rows:
        assert delivery.trace_id == "t" * 32
        assert delivery.status == Delivery.Status.PENDING
        assert delivery.attempts == 0
        assert before <= delivery.due_at <= timezone.now()
        assert delivery.enqueued_at is not None  # its job was written with it (ORM broker)


@pytest.mark.django_db
def test_emit_without_trace_id_starts_a_new_trace(steps):
    """emit() without a trace id gives the event and its deliveries a fresh shared one."""
    subscribe(steps, "A", "t")
    first = bus.emit("t", {})
    second = bus.emit("t", {})
    assert len(first.trace_id) == 32
    assert first.trace_id != second.trace_id
    assert Delivery.objects.get(event=first).trace_id == first.trace_id


@pytest.mark.django_db
def test_emit_to_a_topic_without_subscribers_records_no_delivery(steps):
    """An event nobody subscribes to is recorded, with no delivery."""
    subscribe(steps, "A", "other")
    bus.emit("nobody.listens", {"x": 1})
    assert Event.objects.filter(topic="nobody.listens").count() == 1
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_emit_rejects_non_json_data(steps):
    """Data that is not JSON raises TypeError and records nothing."""
    subscribe(steps, "A", "t")
    with pytest.raises(TypeError, match="'t'"):
        bus.emit("t", {"when": object()})
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_emit_with_delay_is_due_later_and_left_to_the_sweeper(
    steps, django_capture_on_commit_callbacks
):
    """emit(delay=...) makes deliveries due that much later, with no wake-up job yet."""
    subscribe(steps, "A", "t")
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        bus.emit("t", {}, delay=30)
    delivery = Delivery.objects.get()
    assert delivery.due_at >= before + timedelta(seconds=30)
    assert delivery.due_at <= timezone.now() + timedelta(seconds=30)
    assert delivery.enqueued_at is None
    assert not OrmQ.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_emit_in_a_rolled_back_transaction_leaves_nothing(steps, emitted):
    """An emit whose transaction rolls back leaves no event, delivery, job or signal."""
    subscribe(steps, "A", "t")
    with pytest.raises(RuntimeError), transaction.atomic():
        bus.emit("t", {"n": 1})
        assert Delivery.objects.count() == 1
        raise RuntimeError("roll back")
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()
    assert not OrmQ.objects.exists()
    assert emitted == []


@pytest.mark.django_db(transaction=True)
def test_with_the_orm_broker_an_emits_jobs_are_written_in_its_transaction(steps, monkeypatch):
    """The ORM broker keeps its jobs in the deliveries' database: the bridge writes an
    emit's wake-up jobs in the transaction that records it (marking the deliveries),
    so they commit with the event, and the pusher's doorbell rings once they have."""
    subscribe(steps, "A", "t")
    subscribe(steps, "B", "t")
    rung = []
    monkeypatch.setattr(queue, "ring_the_pusher", lambda: rung.append(True))
    with transaction.atomic():
        event = bus.emit("t", {"n": 1})
        ids = sorted(Delivery.objects.filter(event=event).values_list("pk", flat=True))
        assert len(ids) == 2
        assert woken_ids() == ids  # in the transaction, before its commit
        assert all(d.enqueued_at is not None for d in Delivery.objects.all()), "marked carried"
        assert rung == []
    assert woken_ids() == ids
    assert rung == [True]


@pytest.mark.django_db(transaction=True)
def test_with_another_broker_an_emits_jobs_are_sent_after_its_commit(steps, jobs_after_commit):
    """A broker outside the database (Redis) cannot share the transaction, and a job seen
    before the commit would find no delivery: the jobs are sent once it commits."""
    subscribe(steps, "A", "t")
    subscribe(steps, "B", "t")
    with transaction.atomic():
        event = bus.emit("t", {"n": 1})
        assert not OrmQ.objects.exists()
        assert not Delivery.objects.exclude(enqueued_at=None).exists()
    ids = sorted(Delivery.objects.filter(event=event).values_list("pk", flat=True))
    assert len(ids) == 2
    assert woken_ids() == ids
    assert all(d.enqueued_at is not None for d in Delivery.objects.all()), "sent: marked carried"


@pytest.mark.django_db(transaction=True)
def test_event_emitted_is_sent_after_commit_only(steps, emitted):
    """event_emitted is sent once the transaction commits, with the event and its deliveries."""
    subscribe(steps, "A", "t")
    with transaction.atomic():
        event = bus.emit("t", {"n": 1})
        assert emitted == []
    assert len(emitted) == 1
    sent_event, sent_deliveries = emitted[0]
    assert sent_event.pk == event.pk
    assert [d.pk for d in sent_deliveries] == [Delivery.objects.get().pk]


@pytest.mark.django_db(transaction=True)
def test_broker_failure_leaves_deliveries_to_the_sweeper(steps, emitted, monkeypatch):
    """If the broker refuses the job, the emit still commits and deliveries await the sweeper."""
    subscribe(steps, "A", "t")
    subscribe(steps, "B", "t")

    def broken_async_task(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(queue, "async_task", broken_async_task)
    with transaction.atomic():
        event = bus.emit("t", {"n": 1})
    assert Event.objects.filter(pk=event.pk).exists()
    rows = Delivery.objects.filter(event=event)
    assert rows.count() == 2
    assert all(d.enqueued_at is None for d in rows)
    assert not OrmQ.objects.exists()
    assert len(emitted) == 1  # observers still hear of the event


@pytest.mark.django_db
def test_step_delay_seconds_delays_only_that_steps_delivery(
    steps, django_capture_on_commit_callbacks
):
    """A subscriber's queue delay_seconds makes its delivery due later; others are due now."""
    steps.add(
        EventStep(
            name="Later",
            subscribes=["t"],
            infrastructure={"queue": {"delay_seconds": 30}},
        ),
        handler,
    )
    subscribe(steps, "Now", "t")
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        bus.emit("t", {})
    later = Delivery.objects.get(step_name="Later")
    now = Delivery.objects.get(step_name="Now")
    assert later.due_at >= before + timedelta(seconds=30) and later.enqueued_at is None
    assert now.due_at <= timezone.now() and now.enqueued_at is not None


@postgresql_only("SQLite emits through the ORM")
@pytest.mark.django_db
def test_on_postgresql_an_emit_is_one_statement(steps, emitted, django_capture_on_commit_callbacks):
    """The event, its new trace and its deliveries are written by one statement, and
    the instances emit hands on carry the ids they were stored with."""
    subscribe(steps, "A", "t")
    subscribe(steps, "B", "t")
    with (
        django_capture_on_commit_callbacks() as callbacks,
        CaptureQueriesContext(connection) as queries,
    ):
        event = bus.emit("t", {"n": 1}, emitted_by="Api", delay=5)
    assert len(queries) == 1
    (committed,) = callbacks
    committed()  # as at the commit: the event and its deliveries are announced
    ((announced, deliveries),) = emitted
    assert announced is event
    stored = Event.objects.get(pk=event.pk)
    assert (stored.topic, stored.data, stored.emitted_by) == ("t", {"n": 1}, "Api")
    assert Trace.objects.get(trace_id=event.trace_id).entry_step == "Api"
    rows = {d.pk: d for d in Delivery.objects.filter(event=event)}
    assert sorted(rows) == sorted(d.pk for d in deliveries)
    for delivery in deliveries:
        row = rows[delivery.pk]
        assert (row.step_name, row.due_at, row.event_id) == (
            delivery.step_name,
            delivery.due_at,
            event.pk,
        )
        assert row.status == Delivery.Status.PENDING and row.enqueued_at is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("in_transaction", [True, False], ids=["orm-broker", "other-broker"])
def test_a_failing_bridge_is_logged_and_the_emit_stands(steps, monkeypatch, caplog, in_transaction):
    """If the bridge fails to wake the workers, in the emit's transaction or after its
    commit, emit() still returns its event (recorded, unmarked: the sweeper's), and the
    failure is logged by name."""
    subscribe(steps, "A", "t")
    monkeypatch.setattr(queue, "jobs_share_the_transaction", lambda: in_transaction)

    def broken(ids):
        raise RuntimeError("broker down")

    monkeypatch.setattr(queue, "wake", broken)
    monkeypatch.setattr(queue.waker(), "wake", broken)
    event = bus.emit("t", {"n": 1})
    assert Delivery.objects.get(event=event).enqueued_at is None
    assert not OrmQ.objects.exists()
    name = "write_wake_ups" if in_transaction else "send_wake_ups"
    assert name in caplog.text and "broker down" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_job_that_cannot_be_written_leaves_the_emits_transaction_whole(steps, monkeypatch):
    """A database error writing the jobs in the emit's transaction is undone alone (a
    savepoint): the event and its deliveries commit, unmarked, for the sweeper."""
    subscribe(steps, "A", "t")

    def refused(*args, **kwargs):  # a real database error (on PostgreSQL it aborts
        with connection.cursor() as cursor:  # the transaction, but for a savepoint)
            cursor.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(queue, "async_task", refused)
    with transaction.atomic():
        event = bus.emit("t", {"n": 1})
        Event.objects.filter(pk=event.pk).update(emitted_by="still writable")
    assert Event.objects.get(pk=event.pk).emitted_by == "still writable"
    assert Delivery.objects.get(event=event).enqueued_at is None
    assert not OrmQ.objects.exists()


def test_the_workflow_app_connects_the_bridge():
    """The bridge is a receiver of event_recorded and event_emitted from the start,
    connected by the app."""
    sync_receivers, _ = signals.event_emitted._live_receivers(sender=Event)
    assert bridge.send_wake_ups in sync_receivers
    sync_receivers, _ = signals.event_recorded._live_receivers(sender=Event)
    assert bridge.write_wake_ups in sync_receivers


# The emit's contract: data every subscriber takes ---------------------------------


class Order(serializers.Serializer):
    orderId = serializers.IntegerField()
    note = serializers.CharField(required=False)


class Counted(serializers.Serializer):
    """A serializer that counts its validations (``Counted.runs``)."""

    runs = 0
    orderId = serializers.IntegerField()

    def validate(self, attrs):
        Counted.runs += 1
        return attrs


@pytest.mark.django_db
def test_data_a_subscriber_refuses_is_refused_at_the_emit(steps):
    """Data a subscriber's input refuses raises InvalidEmit (a ValueError) naming the
    emitter, topic, subscriber, serializer and field messages; nothing is recorded."""
    steps.add(EventStep(name="Ship", subscribes=["order.placed"], input=Order), handler)
    subscribe(steps, "Audit", "order.placed")  # no input: takes anything
    steps.add(ApiStep(name="Checkout", method="POST", path="/c", emits=["order.placed"]), handler)
    with pytest.raises(InvalidEmit) as info:
        bus.emit("order.placed", {"note": "x"}, emitted_by="Checkout")
    message = str(info.value)
    assert message.startswith("Checkout's emit of 'order.placed' was refused")
    assert 'the input of Ship (Order) says {"orderId": ["This field is required."]}' in message
    assert "nothing was emitted" in message
    assert isinstance(info.value, ValueError)
    assert not Event.objects.exists() and not Delivery.objects.exists()


@pytest.mark.django_db
def test_an_emit_from_outside_any_step_is_checked_too(steps):
    """bus.emit with no emitter is checked the same way, and says it came from outside."""
    steps.add(EventStep(name="Ship", subscribes=["order.placed"], input=Order), handler)
    with pytest.raises(InvalidEmit, match=r"The emit of 'order.placed' \(from outside any step\)"):
        bus.emit("order.placed", {"orderId": "seven"})
    bus.emit("order.placed", {"orderId": 7})
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_check_false_records_data_a_subscriber_refuses(steps):
    """check=False (manage.py emit --no-check) records the data: its delivery fails later."""
    steps.add(EventStep(name="Ship", subscribes=["order.placed"], input=Order), handler)
    event = bus.emit("order.placed", {"note": "x"}, check=False)
    assert Delivery.objects.get(event=event).step_name == "Ship"


@pytest.mark.django_db
def test_subscribers_sharing_a_serializer_validate_the_data_once(steps):
    """The data is validated once per distinct input serializer, not once per subscriber."""
    for name in ("Ship", "Bill", "Pack"):
        steps.add(EventStep(name=name, subscribes=["order.placed"], input=Counted), handler)
    Counted.runs = 0
    bus.emit("order.placed", {"orderId": 7})
    assert Counted.runs == 1
    assert Delivery.objects.count() == 3


@pytest.mark.django_db
def test_the_emitters_declared_schema_is_checked(steps):
    """An emit declared with a schema refuses data that schema refuses, naming it."""
    subscribe(steps, "Ship", "order.placed")
    emits = [{"topic": "order.placed", "schema": Order}]
    steps.add(ApiStep(name="Checkout", method="POST", path="/c", emits=emits), handler)
    with pytest.raises(InvalidEmit, match=r"Checkout's schema for 'order.placed' \(Order\) says"):
        bus.emit("order.placed", {"orderId": "x"}, emitted_by="Checkout")
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_none_as_the_whole_event_is_refused(steps):
    """emit(topic, None) is a ValueError that says to emit {}, not an IntegrityError."""
    subscribe(steps, "A", "t")
    with pytest.raises(ValueError, match=r"the data emitted on 't' is None.*emit \{\}"):
        bus.emit("t", None)
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_data_json_would_change_is_refused(steps):
    """A tuple or a non-string key is NotJSON naming the topic and where: not recorded changed."""
    subscribe(steps, "A", "t")
    with pytest.raises(NotJSON, match=r"data emitted on 't'.*\['ids'\] is a tuple"):
        bus.emit("t", {"ids": (1, 2)})
    with pytest.raises(NotJSON, match=r"data emitted on 't'.*its key 1 is an int"):
        bus.emit("t", {1: "a"})
    assert not Event.objects.exists()
