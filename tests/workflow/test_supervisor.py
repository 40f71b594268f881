"""The supervisor notices a dead cluster process, ends its leases at once, and restarts
the cluster with wake-ups cleared; a worker that retires on purpose is not a crash."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.utils import timezone

from workflow import bus, processes
from workflow.models import Delivery, Event, Run
from workflow.steps import EventStep
from workflow.store import store
from workflow.supervisor import Supervisor


class FakeSentinel:
    """Stands in for django-q2's sentinel: a process with children of its own."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-c", SENTINEL], stdout=subprocess.PIPE, text=True
        )
        self.pid = self.process.pid
        self.children = [int(pid) for pid in self.process.stdout.readline().split()]

    def join(self, timeout=None):
        self.process.wait(timeout)


SENTINEL = """
import subprocess, sys, time
def kid():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
kids = [kid() for _ in range(2)]
print(*[k.pid for k in kids], flush=True)
while True:
    for n, k in enumerate(kids):
        if k.poll() is not None:  # reap, and start another, as the sentinel's guard does
            kids[n] = kid()
    time.sleep(0.05)
"""


class FakeCluster:
    made = []

    def __init__(self):
        self.sentinel = None
        FakeCluster.made.append(self)

    def start(self):
        self.sentinel = FakeSentinel()


@pytest.fixture
def keeper():
    FakeCluster.made = []
    kept = Supervisor(FakeCluster)
    kept.start()
    yield kept
    kept.close()
    for cluster in FakeCluster.made:
        end(cluster)


def end(cluster):
    """Kill a fake cluster's sentinel and every process it started."""
    sentinel = cluster.sentinel.process
    try:
        found = psutil.Process(sentinel.pid)
        found.suspend()  # no new kid while they are killed
        doomed = [*found.children(recursive=True), found]
    except psutil.Error:  # already gone (a restart ended it)
        doomed = []
    for process in doomed:
        try:
            process.kill()
        except psutil.Error:
            pass
    sentinel.wait()


def wait_for(check, timeout=5):
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


@pytest.mark.django_db
def test_a_killed_member_is_reported_lost(keeper):
    """lost_members() is empty while all live, and names a member once it is killed."""
    assert wait_for(lambda: len(keeper.members) == 2) and keeper.lost_members() == set()
    victim = FakeCluster.made[0].sentinel.children[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(keeper.lost_members) == {victim}


@pytest.mark.django_db
def test_the_leases_of_a_killed_member_end_at_once(keeper, steps):
    """A member killed while it holds a delivery: its lease ends now (no waiting for it
    to run out), its run is interrupted saying its process died; another's lease stays."""
    steps.add(EventStep(name="A", subscribes=["t"]), lambda input, ctx: None)
    victim, other = FakeCluster.made[0].sentinel.children
    assert wait_for(lambda: len(keeper.members) == 2)
    ids = [Delivery.objects.get(event=bus.emit("t", {})).pk for _ in range(2)]
    (held,) = store.claim(ids[:1], processes.worker_id(victim))
    (kept,) = store.claim(ids[1:], processes.worker_id(other))
    os.kill(victim, signal.SIGKILL)
    assert wait_for(keeper.lost_members) == {victim}
    row = Delivery.objects.get(pk=held.pk)
    assert row.status == Delivery.Status.RUNNING and row.claimed_until <= timezone.now()
    run = Run.objects.get(pk=held.run.pk)
    assert (run.status, run.error) == (
        Run.Status.INTERRUPTED,
        f"Its worker process ({victim}) died",
    )
    assert Delivery.objects.get(pk=kept.pk).claimed_until > timezone.now()
    (again,) = store.claim(ids[:1], "another")  # claimable at once, that attempt counted
    assert again.delivery.attempts == 2


@pytest.mark.django_db
def test_a_member_that_retired_is_not_lost_and_its_successor_is_watched(keeper):
    """A process that announced its retirement and exits is not reported lost; the one
    the sentinel starts in its place becomes a member, reported lost if it is killed."""
    assert wait_for(lambda: len(keeper.members) == 2)
    retiring = FakeCluster.made[0].sentinel.children[0]
    processes.announce_retirement(retiring)
    os.kill(retiring, signal.SIGKILL)
    lost = set()

    def replaced():
        lost.update(keeper.lost_members())
        return retiring not in keeper.members and len(keeper.members) == 2

    assert wait_for(replaced)
    assert lost == set()
    (successor,) = set(keeper.members) - set(FakeCluster.made[0].sentinel.children)
    os.kill(successor, signal.SIGKILL)
    assert successor in wait_for(keeper.lost_members)


@pytest.mark.django_db
def test_restart_replaces_the_cluster_and_clears_pending_wake_ups(keeper, settings):
    """restart() ends the old processes, starts a new cluster, and clears enqueued_at on
    pending deliveries only, so the sweeper wakes them again."""
    settings.WORKFLOW = {"SHUTDOWN_GRACE": 0.2}
    event = Event.objects.create(topic="t", data={}, trace_id="t" * 32)
    carried = Delivery.objects.create(event=event, step_name="A", trace_id="t" * 32)
    done = Delivery.objects.create(
        event=event, step_name="B", trace_id="t" * 32, status=Delivery.Status.SUCCEEDED
    )
    Delivery.objects.update(enqueued_at="2026-01-01T00:00:00Z")
    old = FakeCluster.made[0].sentinel
    os.kill(old.children[0], signal.SIGKILL)
    keeper.restart(wait_for(keeper.lost_members))
    assert old.process.poll() is not None, "the old sentinel still runs"
    assert len(FakeCluster.made) == 2 and keeper.restarts == 1
    assert wait_for(lambda: len(keeper.members) == 2)
    carried.refresh_from_db()
    done.refresh_from_db()
    assert carried.enqueued_at is None and done.enqueued_at is not None


def test_a_worker_exits_through_python_on_sigterm_so_its_finalizers_run(tmp_path):
    """After post_spawn (worker_started), SIGTERM raises SystemExit: multiprocessing's
    finalizers (the pool's drain) run, where the default SIGTERM would end it at once."""
    marker = tmp_path / "finalized"
    ready = multiprocessing.get_context("fork").Event()
    process = multiprocessing.get_context("fork").Process(target=_worker, args=(str(marker), ready))
    process.start()
    assert ready.wait(5)
    os.kill(process.pid, signal.SIGTERM)
    process.join(5)
    assert process.exitcode == 0
    assert marker.read_text() == "drained"


def _worker(marker, ready):
    from multiprocessing import util

    processes.worker_started()
    util.Finalize(None, Path(marker).write_text, args=("drained",), exitpriority=10)
    ready.set()
    time.sleep(30)


def dead_worker_id():
    """The id a worker had that ran on this host and is gone now."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = processes.worker_id(process.pid)
    process.kill()
    process.wait()
    return process.pid, worker


@pytest.mark.django_db
def test_a_worker_that_died_before_the_first_look_is_lost_all_the_same(keeper, steps):
    """A worker announced its start, then died before the supervisor saw it: it is
    reported lost (so the cluster is replaced) and its leases end."""
    steps.add(EventStep(name="A", subscribes=["t"]), lambda input, ctx: None)
    pid, worker = dead_worker_id()
    (Path(keeper.notes) / f"born-{pid}-{worker.rsplit('/', 1)[1]}").touch()
    (held,) = store.claim([Delivery.objects.get(event=bus.emit("t", {})).pk], worker)
    assert pid in keeper.lost_members()
    assert Delivery.objects.get(pk=held.pk).claimed_until <= timezone.now()
    assert keeper.lost_members() == set()  # reported once


@pytest.mark.django_db
def test_a_starting_supervisor_ends_the_leases_of_processes_gone_from_this_host(steps):
    """qcluster killed outright and started again: the leases its old workers held end
    when the new one starts; a live process's lease, and another host's, stay."""
    steps.add(EventStep(name="A", subscribes=["t"]), lambda input, ctx: None)
    ids = [Delivery.objects.get(event=bus.emit("t", {})).pk for _ in range(3)]
    _, gone = dead_worker_id()
    live = processes.worker_id()  # this test process
    (old,) = store.claim(ids[:1], gone)
    (mine,) = store.claim(ids[1:2], live)
    (far,) = store.claim(ids[2:], "elsewhere:7/1")
    FakeCluster.made = []
    kept = Supervisor(FakeCluster)
    try:
        kept.start()
        now = timezone.now()
        assert Delivery.objects.get(pk=old.pk).claimed_until <= now
        assert Delivery.objects.get(pk=mine.pk).claimed_until > now
        assert Delivery.objects.get(pk=far.pk).claimed_until > now
        assert Run.objects.get(pk=old.run.pk).status == Run.Status.INTERRUPTED
    finally:
        kept.close()
        for cluster in FakeCluster.made:
            end(cluster)
