"""The processes of a cluster: each dies with its parent; runserver's embedded cluster
comes back when it dies, a few times a minute at most."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from workflow import processes
from workflow.embedded import EmbeddedCluster

ROOT = Path(__file__).resolve().parents[2]

PARENT = """
import os, sys, time
from workflow import processes
if sys.argv[1] == "die-with-parents":
    processes.die_with_parents()
child = os.fork()
if child == 0:
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""


def parent_and_child(mode):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    return parent, int(parent.stdout.readline())


@pytest.mark.parametrize("mode, survives", [("die-with-parents", False), ("plain", True)])
def test_a_child_forked_after_die_with_parents_is_killed_with_its_parent(mode, survives):
    """SIGKILL of a process that called die_with_parents() kills the child it forked
    (the kernel's parent-death signal); without it, the child lives on, orphaned."""
    parent, child = parent_and_child(mode)
    try:
        parent.kill()
        parent.wait()
        gone, _ = psutil.wait_procs([psutil.Process(child)], timeout=3)
        assert bool(gone) is not survives
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_worker_id_names_this_host_pid_and_start_and_tells_the_living():
    """host:pid/start of this process is alive; the same pid with another start is not."""
    mine = processes.worker_id()
    assert mine.startswith(processes.this_host() + f"{os.getpid()}/")
    assert processes.alive(mine)
    assert not processes.alive(f"{processes.this_host()}{os.getpid()}/0")
    assert processes.alive("another-host:1/0")  # not ours to judge


def fake_manage(tmp_path, body):
    """A manage.py stand-in: ``qcluster`` runs ``body`` (and notes each start)."""
    script = tmp_path / "manage.py"
    starts = tmp_path / "starts"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            with open({str(starts)!r}, "a") as f:
                f.write("start\\n")
            {body}
            """
        )
    )
    return str(script), starts


def wait_for(check, timeout=10):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return result


def test_a_dead_embedded_cluster_is_started_again_and_says_so(tmp_path):
    """The cluster killed: a new one is started, and runserver says why and its pid."""
    manage, starts = fake_manage(tmp_path, "time.sleep(60)")
    said = []
    cluster = EmbeddedCluster(manage, say=said.append)
    try:
        first = cluster.start()
        wait_for(starts.exists)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: said)
        assert said == [
            f"Workflow workers stopped (killed by signal 9); started them again "
            f"(django-q2 cluster, pid {cluster.process.pid})."
        ]
        assert cluster.process.pid != first and cluster.process.poll() is None
    finally:
        cluster.stop()
    assert cluster.process is None


def test_an_embedded_cluster_says_whether_it_runs_beside_this_process(tmp_path):
    """Running once started, not once dead (before its restart) or stopped."""
    manage, starts = fake_manage(tmp_path, "time.sleep(60)")
    assert not EmbeddedCluster.running_here()
    cluster = EmbeddedCluster(manage, say=lambda line: None)
    try:
        cluster.start()
        assert EmbeddedCluster.running_here()
        with cluster.lock:  # the keeper waits: no restart yet
            os.kill(cluster.process.pid, signal.SIGKILL)
            cluster.process.wait()
            assert not EmbeddedCluster.running_here()
    finally:
        cluster.stop()
    assert not EmbeddedCluster.running_here()


def test_an_embedded_cluster_that_keeps_dying_is_left_stopped_after_three_restarts(tmp_path):
    """A cluster that exits at once, again and again: three restarts, then runserver
    says it gives up and how to find the cause, and starts no more."""
    manage, starts = fake_manage(tmp_path, "raise SystemExit(1)")
    said = []
    cluster = EmbeddedCluster(manage, say=said.append)
    try:
        cluster.start()
        wait_for(lambda: len(said) == 4, timeout=15)
        time.sleep(1.5)
        assert len(starts.read_text().splitlines()) == 4  # the first and three restarts
        assert all("exit code 1); started them again" in line for line in said[:3])
        assert "4 times within 60 s: not starting them again" in said[3]
        assert "manage.py qcluster" in said[3]
    finally:
        cluster.stop()
