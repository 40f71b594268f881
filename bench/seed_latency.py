"""Seed flow latency: from POST /users/register returning to the user's status `active`
with both flags, one user at a time on an idle stack.

    python bench/seed_latency.py [--samples 50] [--configs sqlite,pg-redis]
    python bench/seed_latency.py --quick

Starts `manage.py runserver` as the README does (embedded cluster, the project's own
settings) on SQLite, then on PostgreSQL with django-q2's Redis broker, registers users
one after another and polls `GET /users/:userId/status` every 10 ms. It also reads
when the database recorded the last of the three writes that make the user active
with both flags (the status update and the two flags' state entries), which the
client's polling sees up to a poll and a request later.

The baseline is the flow's floor, 1.0 s: SendWelcomeEmail sleeps 1.0 s (as in the
tutorial) and SetupUserAccount 0.8 s beside it, so no runtime can make a user active
sooner. The ratio is the median over that floor.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import available, configuration, in_child, loadavg, machine, percentile  # noqa: E402
from bench.stack import Stack  # noqa: E402

FLOOR = 1.0  # users.services.WELCOME_EMAIL_SECONDS
POLL = 0.01


def register(stack, n):
    body = {
        "name": f"User {n}",
        "email": f"seed{n}-{time.time_ns()}@example.com",
        "password": "securepass123",
    }
    response = stack.post("/users/register", body)
    assert response.status_code == 201, response.text
    return response.json()["userId"]


def active(stack, user_id):
    body = stack.get(f"/users/{user_id}/status").json()
    return body["status"] == "active" and body["emailSent"] and body["accountSetup"]


def recorded_at(stack, user_id):
    """When the last of the user's active status and two flags was written (epoch s)."""
    (last,) = stack.query(
        'SELECT MAX(updated_at) FROM workflow_stateentry WHERE ("group" = ? AND key = ?) '
        'OR ("group" = ? AND key = ?) OR ("group" = ? AND key = ?)',
        ("users", user_id, "emails", f"welcome-{user_id}", "user-settings", user_id),
    )[0]
    if isinstance(last, str):  # SQLite: UTC, without a zone
        last = datetime.fromisoformat(last).replace(tzinfo=UTC)
    return last.timestamp()


def sample(stack, n):
    """Seconds from the POST returning to active: as a client polling every 10 ms sees
    it, and as recorded in the database; and seconds the POST took."""
    started = time.monotonic()
    user_id = register(stack, n)
    returned, returned_at = time.monotonic(), time.time()
    while not active(stack, user_id):
        if time.monotonic() - returned > 30:
            raise TimeoutError(f"{user_id} not active after 30 s")
        time.sleep(POLL)
    seen = time.monotonic() - returned
    return seen, recorded_at(stack, user_id) - returned_at, returned - started


def child(config, samples):
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-seed-{config}-"))
    with configuration(config, workdir) as env, Stack(workdir, env=env) as stack:
        for n in range(3):  # warm up
            sample(stack, f"warm{n}")
        results = [sample(stack, n) for n in range(samples)]
        return {
            "config": config,
            "active": [seen for seen, _, _ in results],
            "recorded": [recorded for _, recorded, _ in results],
            "post": [post for _, _, post in results],
            "load": loadavg(),
        }


def report(result):
    name, times = result["config"], result["active"]
    median = statistics.median(times)
    print(
        f"{name:9} seed flow, POST returned -> active (n={len(times)}): median {median:.3f} s, "
        f"p95 {percentile(times, 95):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s; "
        f"POST median {statistics.median(result['post']) * 1000:.0f} ms"
    )
    recorded = result["recorded"]
    print(
        f"{name:9} the same, as recorded in the database (last of the three state writes): "
        f"median {statistics.median(recorded):.3f} s, p95 {percentile(recorded, 95):.3f} s"
    )
    print(
        f"{name:9} baseline: the flow's floor {FLOOR:.3f} s (the welcome email's sleep); "
        f"ratio median / floor = {median / FLOOR:.3f}x   [{result['load']}]"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--configs", default="sqlite,pg-redis")
    parser.add_argument("--quick", action="store_true", help="5 samples, SQLite only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.samples, args.configs = 5, "sqlite"
    if args.child:
        print(json.dumps(child(args.child, args.samples)))
        return
    print(machine())
    for config in available(args.configs.split(",")):
        argv = ["--child", config, "--samples", str(args.samples)]
        report(in_child(__file__, argv, {"DJANGO_SETTINGS_MODULE": "config.settings"}))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()
