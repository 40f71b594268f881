"""Crashes: a worker killed mid-handler, a whole cluster killed mid-burst, a cluster
stopped with SIGTERM; nothing is lost and nothing runs twice after success."""

import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from tests.e2e.conftest import register, wait_active
from tests.e2e.probing import (
    deliveries,
    emit,
    finished,
    in_session,
    probe_env,
    runs,
    state_values,
    wait_for,
    worker_pids,
)

pytestmark = pytest.mark.e2e


def test_worker_killed_mid_handler_has_its_deliveries_run_again_and_none_twice(new_stack, tmp_path):
    """SIGKILL of a worker process while 20 handlers run: all 20 end succeeded, each
    counted once; the killed runs are marked interrupted and run again."""
    stack = new_stack(reload=False, env=probe_env(tmp_path))
    run = uuid.uuid4().hex[:8]
    trace = emit(stack, "probe.slow", [{"id": f"{run}-{n}", "seconds": 2} for n in range(20)])
    pids = wait_for(lambda: worker_pids(stack, trace), 10, "handlers running", stack)
    victim = sorted(pids)[0]
    os.kill(victim, signal.SIGKILL)
    found = wait_for(finished(stack, trace, "Slow", 20), 40, "all 20 finished", stack)
    assert all(d["status"] == "succeeded" for d in found)
    done = state_values(stack, "probe-done")
    assert [done.get(f"{run}-{n}") for n in range(20)] == [1] * 20
    every_run = [r for d in found for r in runs(stack, d["id"])]
    assert sum(r["status"] == "succeeded" for r in every_run) == 20
    killed = [r for r in every_run if f":{victim}/" in r["worker"]]
    assert killed and all(r["status"] == "interrupted" for r in killed), killed
    assert "restarting the cluster" in stack.log()
    session = os.getsid(stack.cluster_mains()[0].pid)
    stack.stop()
    assert wait_for(lambda: not in_session(session), 5, "every cluster process gone", stack)


def spawn_cluster(stack, name):
    return stack.spawn("qcluster", log_name=f"{name}.log")


def test_cluster_killed_mid_burst_and_restarted_loses_nothing_and_repeats_nothing(
    new_stack, tmp_path
):
    """SIGKILL of the whole cluster during 200 registrations, then a new one: every user
    active, each welcome email state written once, each notification count exactly 1."""
    stack = new_stack(reload=False, env=probe_env(tmp_path, WORKFLOW_EMBEDDED_WORKERS="0"))
    cluster = spawn_cluster(stack, "cluster1")
    with ThreadPoolExecutor(8) as pool:
        sent = pool.map(lambda n: register(stack, f"User {n}")["userId"], range(100))
        users = list(sent)
        wait_for(
            lambda: stack.query(
                "SELECT COUNT(*) FROM workflow_run WHERE status = 'running' "
                "AND step_name = 'SendWelcomeEmail'"
            )[0][0],
            10,
            "handlers running",
            stack,
        )
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()
        users += list(pool.map(lambda n: register(stack, f"User {n}")["userId"], range(100, 200)))
    interrupted = stack.query("SELECT COUNT(*) FROM workflow_delivery WHERE status = 'running'")
    assert interrupted[0][0] > 0, "the kill caught no handler mid-run"
    cluster = spawn_cluster(stack, "cluster2")
    try:
        for user_id in users:
            wait_active(stack, user_id, timeout=60)
        wait_for(lambda: len(state_values(stack, "notification-counts")) == 200, 20, "logs", stack)
        counts = state_values(stack, "notification-counts")
        assert sorted(counts) == sorted(users)
        assert {value["count"] for value in counts.values()} == {1}
        logged = stack.query(
            "SELECT COUNT(*) FROM workflow_stateentry WHERE `group` = 'notification-logs'"
        )
        assert logged == [(200,)], "a notification was logged twice"
        emails = stack.query(
            "SELECT COUNT(*), SUM(created_at = updated_at) FROM workflow_stateentry "
            "WHERE `group` = 'emails'"
        )
        assert emails == [(200, 200)], "a welcome email state was written twice"
        # The probe app's Heartbeat cron step fires every second: one may be running now.
        unfinished = stack.query(
            "SELECT COUNT(*) FROM workflow_delivery WHERE status != 'succeeded' "
            "AND (step_name != 'Heartbeat' OR status = 'dead')"
        )
        assert unfinished == [(0,)]
    finally:
        cluster.terminate()
        cluster.wait(timeout=15)


def test_qcluster_stopped_with_sigterm_finishes_or_hands_back_and_a_restart_loses_nothing(
    new_stack, tmp_path
):
    """SIGTERM: short handlers finish, long ones are handed back (attempt uncounted);
    the next cluster runs them; each item counted exactly once."""
    stack = new_stack(reload=False, env=probe_env(tmp_path, WORKFLOW_EMBEDDED_WORKERS="0"))
    cluster = spawn_cluster(stack, "cluster1")
    run = uuid.uuid4().hex[:8]
    items = [{"id": f"{run}-{n}", "seconds": 1 if n < 5 else 5} for n in range(10)]
    trace = emit(stack, "probe.slow", items)
    wait_for(lambda: _running(stack, trace) == 10, 10, "all ten running", stack)
    main = psutil.Process(cluster.pid)
    processes = [main, *main.children(recursive=True)]
    cluster.send_signal(signal.SIGTERM)
    cluster.wait(timeout=10)
    _, alive = psutil.wait_procs(processes, timeout=5)
    assert not alive, f"cluster processes outlived the stop: {alive}"
    after_stop = {d["id"]: d["status"] for d in deliveries(stack, trace, "Slow")}
    assert sorted(after_stop.values()) == ["pending"] * 5 + ["succeeded"] * 5
    cluster = spawn_cluster(stack, "cluster2")
    try:
        found = wait_for(finished(stack, trace, "Slow", 10), 30, "all ten finished", stack)
        assert all(d["status"] == "succeeded" and d["attempts"] == 1 for d in found)
        done = state_values(stack, "probe-done")
        assert [done.get(item["id"]) for item in items] == [1] * 10
    finally:
        cluster.terminate()
        cluster.wait(timeout=15)


def _running(stack, trace):
    return stack.query(
        "SELECT COUNT(*) FROM workflow_run WHERE trace_id = ? AND status = 'running'", (trace,)
    )[0][0]
