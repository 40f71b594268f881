"""runserver starts the workers beside the web server, stops them, and reloads them."""

import os
import signal
import time

import psutil
import pytest

from tests.e2e.conftest import register, scratch_env, wait_active

pytestmark = pytest.mark.e2e

WATCHED = """
from workflow.steps import EventStep

config = EventStep(name="Watched", subscribes=["user.registered"], flows=["scratch"])


def handler(input, ctx):
    pass
"""


def cluster_pid(stack, timeout=15, not_pid=None):
    """The embedded cluster's main pid, once its workers are up (and it is not ``not_pid``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for main in stack.cluster_mains():
            try:
                if main.pid != not_pid and main.children(recursive=True):
                    return main.pid
            except psutil.Error:
                continue
        time.sleep(0.1)
    raise AssertionError(f"no cluster beside runserver:\n{stack.log()}")


def test_ctrl_c_stops_server_and_workers_within_five_seconds(new_stack):
    """SIGINT to runserver's process group (Ctrl-C) ends every process in under 5 s."""
    stack = new_stack()
    cluster_pid(stack)
    deadline = time.monotonic() + 10  # the cluster spawns its workers a moment after it starts
    while len(processes := stack.all_processes()) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(processes) >= 5, "runserver, its reloader child, and a cluster with workers"
    # Keep handlers busy while stopping: they finish or are handed back.
    for n in range(4):
        register(stack, name=f"Busy {n}")
    elapsed, alive = stack.interrupt()
    assert alive == []
    assert elapsed < 5, f"took {elapsed:.1f}s"


def test_noreload_also_starts_the_workers(new_stack):
    """`runserver --noreload` runs the flow to active: the workers started too, as the
    project's page at / says."""
    stack = new_stack(reload=False)
    user = register(stack)
    wait_active(stack, user["userId"], timeout=5)
    assert "beside this server: runserver started them" in stack.get("/").text


def test_code_change_reloads_server_and_workers(new_stack, scratch):
    """Touching a step file restarts the cluster with the server, and the flow still runs.
    (The step file is a scratch app's: the project's own are watched by the servers of
    tests running beside this one.)"""
    step = scratch / "watched_step.py"
    step.write_text(WATCHED)
    stack = new_stack(env=scratch_env(scratch))
    old = cluster_pid(stack)
    # A new modification time is a code change to the autoreloader; the text is unchanged.
    time.sleep(1.2)  # the reloader compares modification times once a second
    os.utime(step)
    cluster_pid(stack, timeout=20, not_pid=old)  # a new cluster, with workers
    assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE
    assert "watched_step.py changed, reloading" in stack.log()
    user = register(stack)
    wait_active(stack, user["userId"], timeout=5)


def test_setting_turns_embedded_workers_off_for_a_separate_qcluster(new_stack):
    """With embedded workers off, nothing runs until `manage.py qcluster` is started
    (the project's page at / says the workers are not this server's)."""
    stack = new_stack(env={"WORKFLOW_EMBEDDED_WORKERS": "0"})
    assert stack.cluster_processes() == []
    assert "not started by this server" in stack.get("/").text
    user = register(stack)
    time.sleep(1.5)
    status = stack.get(f"/users/{user['userId']}/status").json()
    assert status["status"] == "pending" and not status["emailSent"]
    qcluster = stack.spawn("qcluster", log_name="qcluster.log")
    try:
        wait_active(stack, user["userId"], timeout=15)
    finally:
        started = time.monotonic()
        qcluster.send_signal(signal.SIGTERM)
        qcluster.wait(timeout=10)
    assert time.monotonic() - started < 5
