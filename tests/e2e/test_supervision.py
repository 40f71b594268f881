"""The supervised lifecycle against a real runserver and cluster, tried as a hostile
tester would: handlers that hang or run long, workers killed under load, a cycle of
steps, a trace cancelled, the embedded cluster killed, and no process left behind."""

import os
import re
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from tests.e2e.conftest import register, wait_active
from tests.e2e.probing import (
    deliveries,
    emit,
    finished,
    probe_env,
    runs,
    state_values,
    wait_for,
)

pytestmark = pytest.mark.e2e
HUNG = 80  # more than the cluster's handler threads (2 workers x 32)


def running(stack, step, trace=None):
    sql = "SELECT COUNT(*) FROM workflow_run WHERE status = 'running' AND step_name = ?"
    params = (step,)
    if trace:
        sql, params = sql + " AND trace_id = ?", (step, trace)
    return stack.query(sql, params)[0][0]


def logged(stack, text, times):
    """A check: ``text`` is in the stack's log exactly ``times`` times."""
    return lambda: stack.log().count(text) == times


def heartbeats(stack):
    return state_values(stack, "probe").get("heartbeats", 0)


def test_hung_handlers_time_out_and_registrations_go_through_meanwhile(new_stack, tmp_path):
    """80 deliveries whose handler never returns (timeout 2 s, one retry), more than the
    cluster's 64 handler threads, while 60 registrations go through: every user is
    active in normal time, cron keeps firing, and each hung delivery is dead, "timed
    out after 2 s", after its two attempts."""
    stack = new_stack(reload=False, env=probe_env(tmp_path))
    trace = emit(stack, "probe.hang", [{"n": n} for n in range(HUNG)])
    wait_for(lambda: running(stack, "Hang", trace) >= 50, 15, "hung handlers", stack)
    beats = heartbeats(stack)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        users = list(pool.map(lambda n: register(stack, f"User {n}")["userId"], range(60)))
    for user_id in users:
        wait_active(stack, user_id, timeout=30)
    took = time.monotonic() - started
    assert took < 30, f"60 registrations took {took:.1f} s beside the hung handlers"
    dead = wait_for(finished(stack, trace, "Hang", HUNG), 60, "hung deliveries dead", stack)
    assert {d["status"] for d in dead} == {"dead"}
    assert {d["error"] for d in dead} == {"HandlerTimeout: timed out after 2 s"}
    assert {d["attempts"] for d in dead} == {2}
    assert heartbeats(stack) >= beats + 3, "cron stopped while handlers hung"
    print(f"60 registrations beside {HUNG} hung handlers: all active in {took:.1f} s")


def test_a_handler_slower_than_its_visibility_timeout_runs_once(new_stack, tmp_path):
    """A healthy 6 s handler whose step's visibility_timeout is 2 s: its lease is renewed
    while it runs, so it starts once, finishes once, and has one run, succeeded."""
    stack = new_stack(reload=False, env=probe_env(tmp_path))
    item = uuid.uuid4().hex[:8]
    trace = emit(stack, "probe.steady", [{"id": item, "seconds": 6}])
    (delivery,) = wait_for(finished(stack, trace, "Steady", 1), 30, "steady handler", stack)
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 1)
    assert state_values(stack, "probe-started")[item] == 1
    assert state_values(stack, "probe-done")[item] == 1
    assert [r["status"] for r in runs(stack, delivery["id"])] == ["succeeded"]


def test_200_registrations_with_two_workers_killed_are_all_active_within_30s(new_stack):
    """Two worker processes SIGKILLed while the handlers of 200 registrations run: the
    supervisor ends their leases at once and replaces the cluster, and every user is
    active, both flags set, within 30 s of the first request."""
    stack = new_stack(reload=False)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        sent = pool.map(lambda n: register(stack, f"User {n}")["userId"], range(200))
        for kill in (1, 2):
            wait_for(logged(stack, "Cluster restarted", kill - 1), 20, "restart", stack)
            pids = wait_for(lambda: welcome_workers(stack), 20, "handlers running", stack)
            os.kill(sorted(pids)[0], signal.SIGKILL)
        users = list(sent)
    for user_id in users:
        wait_active(stack, user_id, timeout=max(1, 30 - (time.monotonic() - started)))
    took = time.monotonic() - started
    assert stack.log().count("Cluster restarted") == 2
    assert took <= 30, f"{took:.1f} s"
    print(f"200 registrations, 2 worker SIGKILLs: all active in {took:.1f} s")


def welcome_workers(stack):
    """Live worker processes running SendWelcomeEmail handlers now."""
    rows = stack.query(
        "SELECT DISTINCT worker FROM workflow_run WHERE status = 'running' "
        "AND step_name = 'SendWelcomeEmail'"
    )
    return pids_of(rows) & {p.pid for p in stack.cluster_processes()}


def pids_of(rows):
    return {int(worker.split(":")[1].split("/")[0]) for (worker,) in rows}


def test_a_step_that_subscribes_to_what_it_emits_stops_at_the_depth_limit(new_stack, tmp_path):
    """A self-subscribing step: 65 events (depths 0 to 64) in its trace, then its emit
    fails; that last delivery is dead at once (not retried) naming the cycle."""
    stack = new_stack(reload=False, env=probe_env(tmp_path))
    trace = emit(stack, "probe.loop", [{"n": 0}])
    found = wait_for(finished(stack, trace, "Loop", 65), 60, "the loop to stop", stack)
    time.sleep(0.5)
    assert len(deliveries(stack, trace, "Loop")) == 65
    events = stack.query(
        "SELECT COUNT(*), MAX(depth) FROM workflow_event WHERE trace_id = ?", (trace,)
    )
    assert events == [(65, 64)]
    *done, last = found
    assert {d["status"] for d in done} == {"succeeded"}
    assert (last["status"], last["attempts"]) == ("dead", 1)
    assert "deeper than WORKFLOW['MAX_DEPTH'] (64)" in last["error"]
    assert "the steps Loop -> Loop form a cycle (topics 'probe.loop')" in last["error"]


def test_a_cancelled_trace_stops_its_pending_and_running_deliveries(new_stack, tmp_path):
    """manage.py cancel, by the trace's first 8 characters: the pending delivery is
    cancelled and never runs; the running ones finish their handlers, but their writes
    are dropped and they are not retried."""
    stack = new_stack(reload=False, env=probe_env(tmp_path))
    run = uuid.uuid4().hex[:8]
    seconds = 8  # longer than the two commands below take on a loaded machine
    started = time.monotonic()
    trace = emit(stack, "probe.slow", [{"id": f"{run}-{n}", "seconds": seconds} for n in range(3)])
    wait_for(lambda: running(stack, "Slow", trace) == 3, 10, "three running", stack)
    stack.manage("emit", "probe.count", "{}", "--trace", trace, "--delay", "30")
    out = stack.manage("cancel", trace[:8]).stdout
    assert f"trace {trace}: cancelled 1 pending and 3 running deliveries" in out
    time.sleep(max(0.0, started + seconds + 1.5 - time.monotonic()))  # the handlers returned
    slow = deliveries(stack, trace, "Slow")
    assert {(d["status"], d["attempts"]) for d in slow} == {("cancelled", 1)}
    for delivery in slow:
        assert [(r["status"], r["error"]) for r in runs(stack, delivery["id"])] == [
            ("interrupted", "Cancelled")
        ]
    done = state_values(stack, "probe-done")
    assert not any(key.startswith(run) for key in done), "a cancelled attempt's write landed"
    (counter,) = deliveries(stack, trace, "Counter")
    assert counter["status"] == "cancelled" and runs(stack, counter["id"]) == []


def test_the_embedded_cluster_killed_comes_back_and_leaves_nothing_behind(new_stack):
    """SIGKILL of runserver's cluster: its processes die with it (none orphaned),
    runserver says it starts a new one, and registrations go through again."""
    stack = new_stack(reload=False)
    user = register(stack)
    wait_active(stack, user["userId"], timeout=15)  # the cluster is up and at work
    (main,) = stack.cluster_mains()
    old = [main, *main.children(recursive=True)]
    main.kill()
    wait_for(lambda: "started them again" in stack.log(), 10, "a new cluster", stack)
    assert re.search(r"Workflow workers stopped \(killed by signal 9\); started them", stack.log())
    _, alive = psutil.wait_procs(old, timeout=5)
    assert not alive, f"processes of the killed cluster live on: {alive}"
    user = register(stack)
    wait_active(stack, user["userId"], timeout=15)


def test_kill_and_restart_again_and_again_leaves_no_process_behind(new_stack, tmp_path):
    """Worker SIGKILLs (the cluster is replaced) and cluster SIGKILLs (runserver starts
    another), two rounds, then Ctrl-C: no process of any of those clusters is left,
    orphaned or not, and none is stuck."""
    stack = new_stack(reload=False, env=probe_env(tmp_path))
    seen = {}
    for round_ in range(2):
        user = register(stack)
        wait_active(stack, user["userId"], timeout=20)
        remember(seen, stack.all_processes())
        os.kill(sorted(live_workers(stack))[0], signal.SIGKILL)
        restarted = round_ + 1
        wait_for(logged(stack, "Cluster restarted", restarted), 20, "restart", stack)
        wait_for(lambda: stack.cluster_mains(), 10, "the new cluster", stack)
        remember(seen, stack.all_processes())
        (main,) = stack.cluster_mains()
        main.kill()
        wait_for(logged(stack, "started them again", round_ + 1), 20, "back", stack)
        wait_for(lambda: stack.cluster_processes(), 10, "the new cluster", stack)
    remember(seen, stack.all_processes())
    user = register(stack)
    wait_active(stack, user["userId"], timeout=20)
    stack.stop()
    time.sleep(1)
    left = [p for p in seen.values() if alive_as_seen(p)]
    assert not left, f"processes left behind: {[(p.pid, p.status()) for p in left]}"
    strays = [p for p in psutil.process_iter() if of_this_stack(p, stack)]
    assert not strays, f"processes of this stack still run: {strays}"


def remember(seen, found):
    for process in found:
        seen.setdefault(process.pid, process)


def live_workers(stack):
    """Pids of the live cluster's worker processes that have run a handler."""
    rows = stack.query("SELECT DISTINCT worker FROM workflow_run WHERE worker != ''")
    return pids_of(rows) & {p.pid for p in stack.cluster_processes()}


def alive_as_seen(process):
    """The very process seen before (same pid and start time) still runs."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def of_this_stack(process, stack):
    try:
        return process.environ().get("DATABASE_URL") == stack.env["DATABASE_URL"]
    except psutil.Error:
        return False
