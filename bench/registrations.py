"""N registrations, from the first POST until every user is active, on each way to run
the project: SQLite, PostgreSQL with the ORM broker, PostgreSQL with the Redis broker,
each with one cluster (runserver's) and with two (plus a `manage.py qcluster`).

    python bench/registrations.py            # --users 1000 --clients 8 [--only pg-redis]

Each run starts `manage.py runserver` (as the README does) on a database of its own (a
SQLite file, or a scratch PostgreSQL database; Redis db 11 for the Redis broker and
channels-redis), sends the registrations from --clients threads, and stops the clock
when every delivery has succeeded (the last of a user's three is what makes it
active). Then it checks, untimed: every user's status is active with both flags, each
delivery ran exactly once (one succeeded run, no failed or interrupted ones), each
user got one notification, and with two clusters both ran handlers.
"""

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack  # noqa: E402

PG = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/11"
CONFIGS = {
    "sqlite": {},
    "pg-orm": {"WORKFLOW_BROKER": "orm"},
    "pg-redis": {"WORKFLOW_BROKER": "redis", "REDIS_URL": REDIS_URL},
}


def register(stack, n):
    body = {"name": f"User {n}", "email": f"user{n}@example.com", "password": "securepass123"}
    response = stack.post("/users/register", body)
    assert response.status_code == 201, response.text
    return response.json()["userId"]


def count(stack, where):
    return stack.query(f"SELECT COUNT(*) FROM workflow_delivery WHERE {where}")[0][0]


def settle(stack, users, timeout):
    """Wait until every delivery of ``users`` registrations has succeeded."""
    deadline = time.monotonic() + timeout
    while count(stack, "status = 'succeeded'") < 3 * users:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled after {timeout} s:\n{stack.log()[-3000:]}")
        time.sleep(0.1)


def check(stack, user_ids, second):
    """Untimed: every user active, each delivery run once, both clusters at work."""
    for user_id in user_ids:
        body = stack.get(f"/users/{user_id}/status").json()
        assert body["status"] == "active" and body["emailSent"] and body["accountSetup"], body
    n = len(user_ids)
    assert count(stack, "1 = 1") == 3 * n, "one delivery per subscriber"
    runs = dict(
        stack.query(
            "SELECT status, COUNT(*) FROM workflow_run WHERE delivery_id IS NOT NULL "
            "GROUP BY status"
        )
    )
    assert runs == {"succeeded": 3 * n}, f"a handler ran twice or failed: {runs}"
    once = stack.query(
        "SELECT COUNT(DISTINCT delivery_id) FROM workflow_run WHERE delivery_id IS NOT NULL"
    )[0][0]
    assert once == 3 * n, "each delivery has exactly one run"
    notified = stack.query(
        "SELECT COUNT(*) FROM workflow_stateentry WHERE \"group\" = 'notification-counts'"
    )[0][0]
    assert notified == n, notified
    if second is not None:
        theirs = {p.pid for p in psutil.Process(second.pid).children(recursive=True)}
        workers = {
            int(w.split(":")[1].split("/")[0])
            for (w,) in stack.query("SELECT DISTINCT worker FROM workflow_run")
            if w
        }
        assert workers & theirs and workers - theirs, "both clusters ran handlers"


def run(config, clusters, users, clients, workdir):
    env = {"PYTHONUNBUFFERED": "1", **CONFIGS[config]}
    database, name = None, None
    if config.startswith("pg"):
        name = f"workflow_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        database = f"{PG}/{name}"
    if "REDIS_URL" in env:
        redis.Redis.from_url(REDIS_URL).flushdb()
    stack = Stack(
        Path(workdir) / f"{config}-{clusters}", env=env, reload=False, database_url=database
    )
    second = None
    try:
        stack.start()
        if clusters == 2:
            second = stack.spawn("qcluster", log_name="qcluster2.log")
            time.sleep(3)  # let it start before the clock does (not part of the figure)
        load = os.getloadavg()[0]
        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            user_ids = list(pool.map(lambda n: register(stack, n), range(users)))
        posted = time.monotonic() - started
        settle(stack, users, timeout=1200)
        elapsed = time.monotonic() - started
        check(stack, user_ids, second)
        return elapsed, posted, load
    finally:
        if second is not None:
            second.terminate()
            second.wait(timeout=15)
        stack.stop()
        if name:
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--only", choices=list(CONFIGS), action="append")
    parser.add_argument("--clusters", type=int, choices=[1, 2], action="append")
    args = parser.parse_args()
    # Stopped (timeout, kill): still stop the servers and drop the scratch databases.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    print(f"{args.users} registrations from {args.clients} clients; {os.cpu_count()} cores")
    print("| configuration | clusters | first POST → all active | POSTs done | load |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-registrations-") as workdir:
        for config in args.only or list(CONFIGS):
            for clusters in args.clusters or [1, 2]:
                elapsed, posted, load = run(config, clusters, args.users, args.clients, workdir)
                print(
                    f"| {config} | {clusters} | **{elapsed:.1f} s** "
                    f"({args.users / elapsed:.1f}/s) | {posted:.1f} s | {load:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
