"""Cron steps run on their expression, at most 1 s late, once per slot across clusters."""

import time
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.e2e
PROBE = {"DJANGO_SETTINGS_MODULE": "tests.e2e.settings"}


def heartbeat_runs(stack, before):
    rows = stack.query(
        "SELECT d.cron_slot, r.started_at, r.status FROM workflow_delivery d "
        "JOIN workflow_run r ON r.delivery_id = d.id WHERE d.step_name = 'Heartbeat' "
        "ORDER BY d.cron_slot"
    )
    runs = [(datetime.fromisoformat(s), datetime.fromisoformat(t), st) for s, t, st in rows]
    return [run for run in runs if run[0] < before]


def test_cron_step_runs_each_second_at_most_one_second_late_and_once_per_slot(new_stack):
    """With a second cluster ticking on the same database, no slot runs twice."""
    stack = new_stack(env=PROBE)
    second = stack.spawn("qcluster", log_name="qcluster2.log")
    try:
        deadline = time.monotonic() + 20  # the workers start once runserver's checks pass
        while not heartbeat_runs(stack, before=datetime(9999, 1, 1)):
            assert time.monotonic() < deadline, f"no heartbeat ran:\n{stack.log()}"
            time.sleep(0.1)
        time.sleep(6)
        assert second.poll() is None, "the second cluster died"
        settled = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=2)  # as stored
    finally:
        second.terminate()
        second.wait(timeout=10)
    runs = heartbeat_runs(stack, before=settled)
    slots = [slot for slot, _, _ in runs]
    assert len(runs) >= 3
    assert len(slots) == len(set(slots)), "a slot ran twice"
    assert all(status == "succeeded" for _, _, status in runs)
    assert all((b - a).total_seconds() == 1 for a, b in zip(slots, slots[1:], strict=False)), slots
    lateness = [(started - slot).total_seconds() for slot, started, _ in runs]
    assert max(lateness) < 1.0, lateness
