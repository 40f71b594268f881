"""Delivery guarantees under faults, against runserver and its real django-q2 cluster.

The probe app (tests/e2e/probe) has steps that fail on purpose, sleep, count and keep
order; tests/e2e/settings.py presumes a run dead after 5 s instead of 60.
"""

import json
import os
import signal
import time
import uuid
from datetime import datetime

import psutil
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """One runserver with the probe steps, shared by the tests that do not kill it."""
    from bench.stack import Stack

    workdir = tmp_path_factory.mktemp("probe")
    env = {"DJANGO_SETTINGS_MODULE": "tests.e2e.settings", "PROBE_DIR": str(workdir)}
    with Stack(workdir, env=env, reload=False) as running:
        yield running


def probe_env(tmp_path, **extra):
    return {"DJANGO_SETTINGS_MODULE": "tests.e2e.settings", "PROBE_DIR": str(tmp_path), **extra}


def emit(stack, topic, items, **options):
    response = stack.post("/probe/emit", {"topic": topic, "items": items, **options})
    assert response.status_code == 202, response.text
    return response.json()["trace"]


def deliveries(stack, trace_id, step):
    rows = stack.query(
        "SELECT id, status, attempts, replay_of_id, event_id, last_error FROM workflow_delivery "
        "WHERE trace_id = ? AND step_name = ? ORDER BY id",
        (trace_id, step),
    )
    fields = ("id", "status", "attempts", "replay_of", "event", "error")
    return [dict(zip(fields, row, strict=True)) for row in rows]


def runs(stack, delivery_id):
    rows = stack.query(
        "SELECT attempt, status, started_at, finished_at, error, traceback, worker "
        "FROM workflow_run WHERE delivery_id = ? ORDER BY id",
        (delivery_id,),
    )
    fields = ("attempt", "status", "started", "finished", "error", "traceback", "worker")
    return [dict(zip(fields, row, strict=True)) for row in rows]


def wait_for(check, timeout, what, stack):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s\n{stack.log()[-3000:]}")
        time.sleep(0.1)
    return result


def finished(stack, trace_id, step, count):
    def check():
        found = deliveries(stack, trace_id, step)
        done = [d for d in found if d["status"] in ("succeeded", "dead")]
        return found if len(found) == count and len(done) == count else None

    return check


def state_values(stack, group):
    rows = stack.query("SELECT key, value FROM workflow_stateentry WHERE `group` = ?", (group,))
    return {key: json.loads(value) for key, value in rows}


def seconds_between(earlier, later):
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def test_handler_failing_twice_then_succeeding_retries_after_its_backoff(probe):
    """Three attempts, two failed with their traceback, gaps of 0.5 s then 1.0 s."""
    item = uuid.uuid4().hex
    trace = emit(probe, "probe.flaky", [{"id": item, "fail_times": 2}])
    (delivery,) = wait_for(finished(probe, trace, "Flaky", 1), 20, "Flaky finished", probe)
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 3)
    attempts = runs(probe, delivery["id"])
    assert [(r["attempt"], r["status"]) for r in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    assert "failing on purpose, attempt 1" in attempts[0]["error"]
    assert "Traceback" in attempts[0]["traceback"] and "RuntimeError" in attempts[0]["traceback"]
    first_gap = seconds_between(attempts[0]["finished"], attempts[1]["started"])
    second_gap = seconds_between(attempts[1]["finished"], attempts[2]["started"])
    # backoff initial 0.5 s, factor 2, no jitter; due times are honoured within 1 s.
    assert 0.5 <= first_gap < 1.5, first_gap
    assert 1.0 <= second_gap < 2.0, second_gap
    assert state_values(probe, "probe-done")[item] == 1


def test_always_failing_delivery_goes_dead_and_replays_after_the_fault_is_fixed(probe):
    """Dead after max_retries (2): 3 attempts; its writes and emits discarded, its logs
    kept; `manage.py replay` runs it again, linked to the dead one, in the same trace."""
    item = uuid.uuid4().hex
    fault = probe.workdir / f"fault-{item}"
    fault.touch()
    counter_before = state_values(probe, "probe").get("counter", 0)
    trace = emit(probe, "probe.fragile", [{"id": item}])
    (dead,) = wait_for(finished(probe, trace, "Fragile", 1), 20, "Fragile dead", probe)
    assert (dead["status"], dead["attempts"]) == ("dead", 3)
    assert "ConnectionError: the fault is still there" in dead["error"]
    assert [r["status"] for r in runs(probe, dead["id"])] == ["failed"] * 3
    assert item not in state_values(probe, "probe-fragile"), "a failed attempt's write was kept"
    assert probe.query(
        "SELECT COUNT(*) FROM workflow_event WHERE topic = 'probe.count' AND trace_id = ?",
        (trace,),
    ) == [(0,)], "a failed attempt's emit was kept"
    logs = "SELECT COUNT(*) FROM workflow_logentry WHERE trace_id = ? AND message = ?"
    assert probe.query(logs, (trace, "Fragile attempt")) == [(3,)]

    fault.unlink()
    replayed = probe.manage("replay", str(dead["id"]))
    assert f"delivery {dead['id']} (Fragile) replayed as delivery" in replayed.stdout
    found = wait_for(finished(probe, trace, "Fragile", 2), 20, "replay finished", probe)
    again = found[1]
    assert again["status"] == "succeeded" and again["replay_of"] == dead["id"]
    assert again["event"] == dead["event"]
    assert state_values(probe, "probe-fragile")[item] == "written by an attempt"
    assert probe.query(logs, (trace, "Fragile attempt")) == [(4,)]
    wait_for(
        lambda: state_values(probe, "probe").get("counter", 0) >= counter_before + 1,
        10,
        "the replay's emit delivered",
        probe,
    )


def test_fifo_deliveries_of_a_group_run_one_at_a_time_in_emit_order(probe):
    """20 events in two interleaved groups: each group's runs happen in emit order."""
    run = uuid.uuid4().hex[:8]
    items = [{"group": f"{run}-{'ab'[n % 2]}", "seq": n} for n in range(20)]
    trace = emit(probe, "probe.fifo", items)
    found = wait_for(finished(probe, trace, "Ordered", 20), 30, "fifo finished", probe)
    assert all(d["status"] == "succeeded" for d in found)
    seen = state_values(probe, "probe-fifo")
    assert seen[f"{run}-a"] == list(range(0, 20, 2))
    assert seen[f"{run}-b"] == list(range(1, 20, 2))
    for group in ("a", "b"):
        group_runs = [runs(probe, d["id"])[0] for d in found[(group == "b") :: 2]]
        for before, after in zip(group_runs, group_runs[1:], strict=False):
            assert before["finished"] <= after["started"], "two runs of one group overlapped"


def test_delayed_emit_runs_after_its_delay_within_one_second(probe):
    """emit(delay=1.5) is not run before 1.5 s, and runs less than 1 s after that."""
    trace = emit(probe, "probe.count", [{"n": 1}], delay=1.5)
    (delivery,) = wait_for(finished(probe, trace, "Counter", 1), 10, "delayed run", probe)
    (created,) = probe.query("SELECT created_at FROM workflow_event WHERE trace_id = ?", (trace,))
    started = runs(probe, delivery["id"])[0]["started"]
    assert 1.5 <= seconds_between(created[0], started) < 2.5


def test_fifty_parallel_updates_of_one_key_add_up_to_fifty(probe):
    """50 deliveries racing on one counter through ctx.state.update lose no update."""
    before = state_values(probe, "probe").get("counter", 0)
    trace = emit(probe, "probe.count", [{"n": n} for n in range(50)])
    found = wait_for(finished(probe, trace, "Counter", 50), 30, "counter finished", probe)
    assert all(d["status"] == "succeeded" for d in found)
    assert state_values(probe, "probe")["counter"] == before + 50


def test_rolled_back_emit_is_never_delivered_and_a_committed_one_outlives_its_process(probe):
    """An emit in a transaction that rolls back is not delivered; a process that dies
    right after committing an emit, before sending its job, has it delivered anyway."""
    script = (
        "import os, sys\n"
        "from django.db import transaction\n"
        "from workflow import bus\n"
        "try:\n"
        "    with transaction.atomic():\n"
        "        bus.emit('probe.count', {'rolled': 'back'}, trace_id=sys.argv[-2])\n"
        "        raise RuntimeError('roll back')\n"
        "except RuntimeError:\n"
        "    pass\n"
        "bus.enqueue = lambda ids: os._exit(3)  # die between the commit and the job\n"
        "bus.emit('probe.count', {'committed': 'then died'}, trace_id=sys.argv[-1])\n"
    )
    rolled_back, committed = uuid.uuid4().hex, uuid.uuid4().hex
    path = probe.workdir / "emit_and_die.py"
    path.write_text(script)
    shell = probe.manage(
        "shell",
        "-c",
        f"import sys; sys.argv += {[rolled_back, committed]!r}; exec(open({str(path)!r}).read())",
        check=False,
    )
    assert shell.returncode == 3, shell.stderr
    (delivery,) = wait_for(
        finished(probe, committed, "Counter", 1), 10, "the sweeper delivered it", probe
    )
    assert delivery["status"] == "succeeded"
    time.sleep(1)
    events = "SELECT COUNT(*) FROM workflow_event WHERE trace_id = ?"
    assert probe.query(events, (rolled_back,)) == [(0,)]
    assert deliveries(probe, rolled_back, "Counter") == []


def worker_pids(stack, trace_id):
    rows = stack.query(
        "SELECT DISTINCT worker FROM workflow_run WHERE trace_id = ? AND status = 'running'",
        (trace_id,),
    )
    return {int(worker.split(":")[1].split("/")[0]) for (worker,) in rows}


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


def in_session(session):
    """Processes left in the embedded cluster's session (orphans included)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session:
                found.append(process)
        except (ProcessLookupError, PermissionError):
            pass
    return found


def spawn_cluster(stack, name):
    return stack.spawn("qcluster", log_name=f"{name}.log")


def test_cluster_killed_mid_burst_and_restarted_loses_nothing_and_repeats_nothing(
    new_stack, tmp_path
):
    """SIGKILL of the whole cluster during 200 registrations, then a new one: every user
    active, each welcome email state written once, each notification count exactly 1."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.e2e.conftest import register, wait_active

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
        assert stack.query(
            "SELECT COUNT(*) FROM workflow_delivery WHERE status != 'succeeded'"
        ) == [(0,)]
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
