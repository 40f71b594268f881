"""Wake-up jobs: sent in batches over the workers, marked as carried, and the waker
that sends what comes together in one go."""

import threading
import time
from contextlib import nullcontext

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ

from tests.markers import postgresql_only
from workflow import bus, queue
from workflow.models import Delivery
from workflow.steps import EventStep
from workflow.store import store

pytestmark = pytest.mark.store


def handler(input, ctx):
    pass


def subscribe(steps, name, *topics):
    steps.add(EventStep(name=name, subscribes=list(topics)), handler)


@pytest.mark.django_db(transaction=True)
def test_a_delivery_claimed_before_its_job_is_marked_stays_unmarked(steps, monkeypatch):
    """wake() marks only deliveries still waiting for their first run, so a fast failure
    (pending again, due after its backoff) is not hidden from the sweeper."""
    subscribe(steps, "A", "t")
    event = bus.emit("t", {})
    delivery = Delivery.objects.get(event=event)
    Delivery.objects.filter(pk=delivery.pk).update(attempts=1, enqueued_at=None)
    monkeypatch.setattr(queue, "enqueue", lambda ids: ids)
    assert queue.wake([delivery.pk]) == [delivery.pk]
    assert Delivery.objects.get(pk=delivery.pk).enqueued_at is None


@pytest.mark.django_db(transaction=True)
def test_a_job_carries_at_most_wake_batch_deliveries(steps, monkeypatch, jobs_after_commit):
    """enqueue() of 40 deliveries with one worker sends jobs of 16, 16 and 8, each id
    exactly once."""
    subscribe(steps, "A", "t")
    monkeypatch.setattr(Conf, "WORKERS", 1)
    monkeypatch.setattr(queue.Waker, "wake", lambda self, ids: None)  # the emits send nothing
    ids = [Delivery.objects.get(event=bus.emit("t", {"n": n})).pk for n in range(40)]
    assert queue.enqueue(ids) == ids
    jobs = sorted(OrmQ.objects.all(), key=lambda job: job.args()[0])
    assert [len(job.args()) for job in jobs] == [16, 16, 8]
    assert [pk for job in jobs for pk in job.args()] == ids
    assert jobs[0].name() == f"delivery-{ids[0]}+15"


def test_the_waker_sends_what_commits_while_it_sends_in_the_next_job(monkeypatch):
    """While one thread sends a job, other threads' wake-ups return at once and go, all
    of them, in the job that thread sends next; a wake-up on an idle waker goes at once."""
    sent, first_job_held, release = [], threading.Event(), threading.Event()

    def wake(ids):
        sent.append(list(ids))
        if len(sent) == 1:
            first_job_held.set()
            assert release.wait(5)
        return ids

    monkeypatch.setattr(queue, "wake", wake)
    waker = queue.Waker()
    sender = threading.Thread(target=waker.wake, args=([1],))
    sender.start()
    assert first_job_held.wait(5)
    for n in range(2, 12):  # these find a job being sent: they leave theirs and return
        waker.wake([n])
    assert sent == [[1]]
    release.set()
    sender.join(5)
    assert sent == [[1], list(range(2, 12))]
    waker.wake([12])  # idle: sent by the caller, at once
    assert sent[-1] == [12]


def test_the_waker_leaves_no_delivery_behind_under_concurrent_emits(monkeypatch):
    """20 threads waking 50 deliveries each: every id is sent exactly once, in fewer jobs."""
    sent, lock = [], threading.Lock()

    def wake(ids):
        time.sleep(0.001)  # a job takes a moment to send
        with lock:
            sent.append(list(ids))
        return ids

    monkeypatch.setattr(queue, "wake", wake)
    waker = queue.Waker()

    def emits(first):
        for n in range(first, first + 50):
            waker.wake([n])

    threads = [threading.Thread(target=emits, args=(t * 50,)) for t in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(pk for job in sent for pk in job) == list(range(1000))
    assert len(sent) < 1000


@pytest.mark.parametrize(
    "workers, count, sizes",
    [(2, 2, [1, 1]), (2, 1, [1]), (2, 9, [5, 4]), (4, 10, [3, 3, 3, 1]), (2, 40, [16, 16, 8])],
)
def test_jobs_spread_deliveries_over_the_workers(monkeypatch, workers, count, sizes):
    """The deliveries sent together are spread over the cluster's workers, a job each,
    up to WAKE_BATCH per job."""
    monkeypatch.setattr(Conf, "WORKERS", workers)
    jobs = []
    monkeypatch.setattr(queue, "async_task", lambda func, *ids, **kwargs: jobs.append(ids))
    monkeypatch.setattr(queue, "jobs_transaction", nullcontext)
    assert queue.enqueue(list(range(count))) == list(range(count))
    assert [len(job) for job in jobs] == sizes


@postgresql_only("SQLite has no row locks")
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_mark_skips_a_delivery_a_claim_holds(steps):
    """A delivery whose row a claim holds is not marked, and the mark does not wait."""
    subscribe(steps, "A", "t")
    held, free = (Delivery.objects.get(event=bus.emit("t", {})).pk for _ in range(2))
    Delivery.objects.update(enqueued_at=None)
    locked, release = threading.Event(), threading.Event()

    def claim_in_progress():
        try:
            with transaction.atomic():
                list(Delivery.objects.select_for_update().filter(pk=held))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=claim_in_progress)
    thread.start()
    try:
        assert locked.wait(5)
        started = time.monotonic()
        store.mark_enqueued([held, free])
        assert time.monotonic() - started < 2
    finally:
        release.set()
        thread.join()
    marked = dict(Delivery.objects.values_list("pk", "enqueued_at"))
    assert marked[held] is None and marked[free] is not None


def jobs(count):
    return [OrmQ.objects.create(key=Conf.CLUSTER_NAME, payload=f"job {n}", lock=timezone.now())
            for n in range(count)]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_the_orm_broker_is_the_projects():
    """The embedded default's broker takes jobs in one transaction (``OrmBroker``)."""
    assert isinstance(get_broker(), queue.OrmBroker)


@pytest.mark.django_db(transaction=True)
def test_the_orm_broker_takes_up_to_bulk_jobs_at_once_in_order(monkeypatch):
    """One dequeue takes the oldest ``bulk`` jobs and locks them for ``retry`` seconds:
    the next dequeue takes the next ones."""
    monkeypatch.setattr(Conf, "BULK", 3)
    made = jobs(5)
    broker = queue.OrmBroker(list_key=Conf.CLUSTER_NAME)
    first, second = broker.dequeue(), broker.dequeue()
    assert [pk for pk, _ in first] == [job.pk for job in made[:3]]
    assert [payload for _, payload in second] == ["job 3", "job 4"]
    assert all(job.lock > timezone.now() for job in OrmQ.objects.all())


@pytest.mark.django_db(transaction=True)
def test_the_orm_broker_writes_nothing_while_the_queue_is_empty(monkeypatch):
    """An empty queue: one read, a wait of ``poll`` seconds at most (on the doorbell),
    no job."""
    waited = []
    monkeypatch.setattr(queue.doorbell, "wait", lambda timeout, alias: waited.append(timeout))
    broker = queue.OrmBroker(list_key=Conf.CLUSTER_NAME)
    with CaptureQueriesContext(connection) as captured:
        assert broker.dequeue() is None
    assert waited == [Conf.POLL]
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["SELECT"]


@pytest.mark.django_db(transaction=True)
def test_two_pushers_never_take_the_same_job(monkeypatch):
    """Brokers dequeuing at once from two threads (two clusters) take each job once."""
    monkeypatch.setattr(Conf, "BULK", 4)
    made = {job.pk for job in jobs(60)}
    taken = []

    def push():
        broker = queue.OrmBroker(list_key=Conf.CLUSTER_NAME)
        try:
            while OrmQ.objects.filter(lock__lt=timezone.now()).exists():
                taken.extend(pk for pk, _ in broker.dequeue() or [])
        finally:
            connection.close()

    threads = [threading.Thread(target=push) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(taken) == sorted(made)


@pytest.mark.django_db(transaction=True)
def test_acknowledged_jobs_are_deleted_together():
    """acknowledge() returns at once; the process's acknowledger deletes the jobs."""
    made = jobs(3)
    broker = queue.OrmBroker(list_key=Conf.CLUSTER_NAME)
    for job in made[:2]:
        broker.acknowledge(job.pk)
    deadline = time.monotonic() + 5
    while OrmQ.objects.count() > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(OrmQ.objects.values_list("pk", flat=True)) == [made[2].pk]
