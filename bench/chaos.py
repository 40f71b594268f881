"""Registrations while worker processes are killed: is anything lost or run twice?

    python bench/chaos.py [--users 500] [--kills 5] [--clients 8]
    python bench/chaos.py --quick

Starts runserver (embedded cluster) with the e2e settings, where a run is presumed
dead after 5 s instead of 60, sends the registrations from several clients, and
meanwhile SIGKILLs a worker process that is running handlers, ``--kills`` times.
Then it waits (up to 300 s) for every user to be active and every delivery to finish,
and counts from the database:
registrations, deliveries, succeeded, retried (more than one attempt), dead, lost
(never finished, or a user never active) and duplicated after success (a delivery
that succeeded twice, a notification counted twice, an email state written twice).
The baseline, measured in the same run, is the same burst with no kill.
"""

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.burst import active, register  # noqa: E402
from bench.stack import Stack  # noqa: E402

OURS = "step_name != 'Heartbeat'"  # the probe app's cron step is not part of the flow
E2E = {"DJANGO_SETTINGS_MODULE": "tests.e2e.settings", "PROBE_DIR": tempfile.gettempdir()}


def running_workers(stack):
    rows = stack.query("SELECT DISTINCT worker FROM workflow_run WHERE status = 'running'")
    return sorted({int(w.split(":")[1].split("/")[0]) for (w,) in rows if ":" in w})


def killer(stack, kills, stop, killed):
    """SIGKILL a worker process with running handlers every second or so."""
    while len(killed) < kills and not stop.is_set():
        time.sleep(random.uniform(0.8, 1.5))
        pids = [p for p in running_workers(stack) if p not in killed]
        if pids:
            victim = random.choice(pids)
            try:
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            except ProcessLookupError:
                pass


def run(users, clients, kills):
    with tempfile.TemporaryDirectory() as tmp, Stack(tmp, env=E2E, reload=False) as stack:
        stop, killed = threading.Event(), []
        chaos = threading.Thread(target=killer, args=(stack, kills, stop, killed), daemon=True)
        started = time.monotonic()
        chaos.start()
        with ThreadPoolExecutor(clients) as pool:
            ids = [u for u, _ in pool.map(lambda n: register(stack, n), range(users))]
        pending = set(ids)
        while pending and time.monotonic() - started < 300:
            pending = {u for u in pending if not active(stack, u)}
            time.sleep(0.2)
        stop.set()
        chaos.join()
        while unfinished(stack) and time.monotonic() - started < 300:
            time.sleep(0.2)  # LogNotification runs after the user is active
        return counts(stack, ids, pending), time.monotonic() - started, killed


def unfinished(stack):
    return stack.query(
        f"SELECT COUNT(*) FROM workflow_delivery WHERE {OURS} AND status IN ('pending', 'running')"
    )[0][0]


def counts(stack, ids, never_active):
    one = lambda sql: stack.query(sql)[0][0]  # noqa: E731
    deliveries = f"SELECT COUNT(*) FROM workflow_delivery WHERE {OURS}"
    twice = (
        "SELECT COUNT(*) FROM (SELECT delivery_id FROM workflow_run WHERE status = 'succeeded' "
        "AND delivery_id IS NOT NULL GROUP BY delivery_id HAVING COUNT(*) > 1)"
    )
    notified_twice = (
        "SELECT COUNT(*) FROM workflow_stateentry WHERE `group` = 'notification-counts' "
        "AND json_extract(value, '$.count') != 1"
    )
    emails_twice = (
        "SELECT COUNT(*) FROM workflow_stateentry WHERE `group` = 'emails' "
        "AND created_at != updated_at"
    )
    return {
        "registrations": one("SELECT COUNT(*) FROM users_account"),
        "deliveries": one(deliveries),
        "succeeded": one(deliveries + " AND status = 'succeeded'"),
        "retried": one(deliveries + " AND attempts > 1"),
        "dead": one(deliveries + " AND status = 'dead'"),
        "lost": unfinished(stack) + len(never_active),
        "duplicated after success": one(twice) + one(notified_twice) + one(emails_twice),
        "interrupted runs": one(
            f"SELECT COUNT(*) FROM workflow_run WHERE {OURS} AND status = 'interrupted'"
        ),
        "cluster restarts": stack.log().count("restarting the cluster"),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="30 registrations, 1 kill")
    args = parser.parse_args()
    if args.quick:
        args.users, args.kills = 30, 1
    for label, kills in (("baseline (no kill)", 0), (f"{args.kills} worker kills", args.kills)):
        found, elapsed, killed = run(args.users, args.clients, kills)
        print(f"{label}: {args.users} registrations, all settled in {elapsed:.1f} s")
        if kills:
            print(f"  killed worker pids: {killed}")
        print("  " + ", ".join(f"{name} {value}" for name, value in found.items()))


if __name__ == "__main__":
    main()
