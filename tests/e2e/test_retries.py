"""Retries, dead letters, replay, fifo, delays and atomic state, against runserver and
its real django-q2 cluster (the probe app's steps; see tests/e2e/probing.py)."""

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.stack import Stack
from tests.e2e.probing import (
    deliveries,
    emit,
    finished,
    runs,
    seconds_between,
    state_values,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """One runserver with the probe steps, shared by the tests that do not kill it."""
    workdir = tmp_path_factory.mktemp("probe")
    env = {"DJANGO_SETTINGS_MODULE": "tests.e2e.settings", "PROBE_DIR": str(workdir)}
    with Stack(workdir, env=env, reload=False) as running:
        yield running


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


def test_twenty_events_of_one_key_with_concurrency_1_never_overlap(probe):
    """concurrency={"limit": 1, "key": "key"}: 20 events of one key, emitted at once,
    run one at a time on a cluster of several workers; another key runs beside them."""
    key = uuid.uuid4().hex[:8]
    items = [{"key": key, "n": n} for n in range(20)] + [{"key": f"{key}-b", "n": 0}]
    trace = emit(probe, "probe.one_at_a_time", items)
    found = wait_for(finished(probe, trace, "OneAtATime", 21), 30, "one at a time", probe)
    assert all(d["status"] == "succeeded" for d in found)
    ran = state_values(probe, "probe-one-at-a-time")  # each handler's [start, end]
    intervals = sorted(ran[f"{key}/{n}"] for n in range(20))
    for before, after in zip(intervals, intervals[1:], strict=False):
        assert before[1] <= after[0], f"two runs of one key overlapped: {before} {after}"
    assert ran[f"{key}-b/0"][0] < intervals[-1][0], "the other key waited for this one"


def test_a_rate_limit_of_5_a_second_spreads_20_events_over_about_4_seconds(probe):
    """rate_limit={"limit": 5, "period": 1}: no second holds more than 5 starts, and
    the 20 take about 3 to 4 s from the first start to the last."""
    trace = emit(probe, "probe.throttled", [{"n": n} for n in range(20)])
    found = wait_for(finished(probe, trace, "Throttled", 20), 30, "throttled", probe)
    assert all(d["status"] == "succeeded" for d in found)
    starts = sorted(
        seconds_between("1970-01-01", runs(probe, d["id"])[0]["started"]) for d in found
    )
    for n, start in enumerate(starts[5:], 5):
        assert start - starts[n - 5] >= 0.999, f"6 starts within 1 s: {starts[n - 5 : n + 1]}"
    spread = starts[-1] - starts[0]
    assert 3.0 <= spread < 5.0, spread


def test_a_debounced_burst_runs_its_last_event_once_a_second_after_it(probe):
    """debounce={"period": 1, "key": "key"}: five events of one key within 0.2 s make
    one run, with the last event's data; the other four are cancelled as superseded."""
    key = uuid.uuid4().hex[:8]
    trace = emit(probe, "probe.debounced", [{"key": key, "n": n} for n in range(5)])

    def ended():
        found = deliveries(probe, trace, "Debounced")
        done = [d for d in found if d["status"] in ("succeeded", "cancelled", "dead")]
        return found if len(done) == 5 else None

    found = wait_for(ended, 15, "debounced", probe)
    assert [d["status"] for d in found] == ["cancelled"] * 4 + ["succeeded"]
    assert state_values(probe, "probe-debounced")[key] == 4
    (created,) = probe.query(
        "SELECT max(created_at) FROM workflow_event WHERE trace_id = ?", (trace,)
    )
    assert seconds_between(created[0], runs(probe, found[-1]["id"])[0]["started"]) >= 1.0


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


DIE_AFTER_THE_COMMIT = {
    # The job sent after the commit (as with Redis): it never is; the sweeper sends it.
    "before-its-job": "queue.jobs_share_the_transaction = lambda: False\n"
    "queue.enqueue = lambda ids: os._exit(3)\n",
    # The ORM broker's job, written with the event: the pusher finds it unrung.
    "before-the-doorbell": "queue.ring_the_pusher = lambda: os._exit(3)\n",
}


@pytest.mark.parametrize("death", DIE_AFTER_THE_COMMIT)
def test_rolled_back_emit_is_never_delivered_and_a_committed_one_outlives_its_process(probe, death):
    """An emit in a transaction that rolls back is not delivered; a process that dies
    right after committing an emit, before sending its job or before ringing the
    pusher's doorbell for the job written with it, has it delivered anyway."""
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
        "from workflow import queue\n"
        + DIE_AFTER_THE_COMMIT[death]
        + "bus.emit('probe.count', {'committed': 'then died'}, trace_id=sys.argv[-1])\n"
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


def test_a_paused_queue_holds_its_deliveries_until_it_is_resumed(probe):
    """With Counter's queue paused (manage.py pause), its events are recorded and their
    deliveries wait, unclaimed, while the cluster runs and its sweeper ticks; after
    manage.py resume each runs once."""
    probe.manage("pause", "Counter")
    try:
        trace = emit(probe, "probe.count", [{}, {}, {}])
        time.sleep(2)  # eight ticks of the sweeper, and the jobs the emit sent
        held = deliveries(probe, trace, "Counter")
        assert [(d["status"], d["attempts"]) for d in held] == [("pending", 0)] * 3
    finally:
        probe.manage("resume", "Counter")
    done = wait_for(finished(probe, trace, "Counter", 3), 20, "Counter resumed", probe)
    assert [(d["status"], d["attempts"]) for d in done] == [("succeeded", 1)] * 3


def test_a_join_runs_once_per_id_however_its_parts_race_and_hands_on_the_rest(probe):
    """30 ids' parts a, b and c, shuffled, from four clients at once: Gather (a join by
    id) runs exactly once for each. An id missing part c times out after 3 s and goes to
    Release once; its part c, sent after, goes to Release as late; Gather never ran."""
    ids = [uuid.uuid4().hex[:12] for _ in range(30)]
    parts = [(f"probe.part.{part}", id_) for id_ in ids for part in "abc"]
    random.shuffle(parts)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: emit(probe, p[0], [{"id": p[1]}]), parts))
    stray = uuid.uuid4().hex[:12]
    emit(probe, "probe.part.a", [{"id": stray}])
    emit(probe, "probe.part.b", [{"id": stray}])

    def gathered():
        values = state_values(probe, "probe-gathered")
        return values if all(values.get(id_) for id_ in ids) else None

    done = wait_for(gathered, 30, "every id gathered", probe)
    assert {id_: done[id_] for id_ in ids} == dict.fromkeys(ids, 1)
    released = wait_for(
        lambda: (state_values(probe, "probe-released")).get(f"{stray}:timeout"),
        15,
        "the stray id timed out",
        probe,
    )
    assert released == 1
    emit(probe, "probe.part.c", [{"id": stray}])
    wait_for(
        lambda: (state_values(probe, "probe-released")).get(f"{stray}:late"),
        10,
        "the late part handed on",
        probe,
    )
    assert stray not in (state_values(probe, "probe-gathered"))
    assert (state_values(probe, "probe-released"))[f"{stray}:timeout"] == 1
