"""The supervisor notices a dead cluster process, and restarts with wake-ups cleared."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workflow import executor
from workflow.models import Delivery, Event
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
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)]
print(*[k.pid for k in kids], flush=True)
while True:
    for k in kids:
        k.poll()  # reap, as the sentinel's guard does
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
    for cluster in FakeCluster.made:
        for pid in [*cluster.sentinel.children, cluster.sentinel.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cluster.sentinel.process.wait()


def wait_for(check, timeout=5):
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


def test_a_killed_member_is_reported_lost(keeper):
    """lost_members() is empty while all live, and names a member once it is killed."""
    assert wait_for(lambda: len(keeper.members) == 2) and keeper.lost_members() == set()
    victim = FakeCluster.made[0].sentinel.children[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(keeper.lost_members) == {victim}


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
    """After post_spawn, SIGTERM raises SystemExit: multiprocessing's finalizers (the
    pool's drain) run, where the default SIGTERM would end the process at once."""
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

    executor.stop_gracefully_on_sigterm()
    util.Finalize(None, Path(marker).write_text, args=("drained",), exitpriority=10)
    ready.set()
    time.sleep(30)
