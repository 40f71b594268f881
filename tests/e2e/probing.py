"""Helpers for the end-to-end tests that drive the probe app (tests/e2e/probe).

The probe app has steps that fail on purpose, sleep, count and keep order;
tests/e2e/settings.py presumes a run dead after 5 s instead of 60.
"""

import json
import os
import time
from datetime import datetime

import psutil


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


def worker_pids(stack, trace_id):
    """Pids of the worker processes running handlers of ``trace_id`` now."""
    rows = stack.query(
        "SELECT DISTINCT worker FROM workflow_run WHERE trace_id = ? AND status = 'running'",
        (trace_id,),
    )
    return {int(worker.split(":")[1].split("/")[0]) for (worker,) in rows}


def in_session(session):
    """Processes left in a session (orphans included)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session:
                found.append(process)
        except (ProcessLookupError, PermissionError):
            pass
    return found
