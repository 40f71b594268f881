"""The same project on PostgreSQL, with the ORM broker and with django-q2's Redis broker,
and two clusters sharing the work: only environment variables change.

Uses this machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379), which
`.ci/run` starts if they are down; each test gets a database of its own.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import psycopg
import pytest
import redis

from bench.stack import ROOT, Stack
from tests.e2e.conftest import register, wait_active
from tests.e2e.probing import emit, probe_env, wait_for

pytestmark = pytest.mark.e2e
PG = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/15"
REGISTRATIONS = int(os.environ.get("E2E_REGISTRATIONS", 200))


def reachable(port):
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


needs_postgres = pytest.mark.skipif(
    not reachable(5432), reason="PostgreSQL is not running on 127.0.0.1:5432"
)
needs_redis = pytest.mark.skipif(
    not reachable(6379), reason="Redis is not running on 127.0.0.1:6379"
)


def run_sql(sql):
    """Run ``sql`` on the server's ``postgres`` database (CREATE/DROP DATABASE)."""
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def database():
    """A new PostgreSQL database, dropped after the test."""
    name = f"workflow_e2e_{uuid.uuid4().hex[:10]}"
    run_sql(f"CREATE DATABASE {name}")
    yield f"{PG}/{name}"
    run_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def flush(url):
    redis.Redis.from_url(url).flushdb()


@pytest.fixture
def flush_redis():
    if reachable(6379):
        flush(REDIS_URL)
    yield
    if reachable(6379):
        flush(REDIS_URL)


def burst(stack, count, clients=8):
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda n: register(stack, f"User {n}")["userId"], range(count)))


def assert_each_delivery_ran_once(stack, users, web=None):
    """Every user active with one notification; each delivery one succeeded run, none
    failed or interrupted (nothing failed, so nothing ran twice). ``web`` answers the
    status requests (default: the stack's runserver)."""
    for user_id in users:
        wait_active(web or stack, user_id, timeout=120)
    deadline = time.monotonic() + 60
    while stack.query("SELECT COUNT(*) FROM workflow_delivery WHERE status != 'succeeded'")[0][0]:
        assert time.monotonic() < deadline, "deliveries still unfinished"
        time.sleep(0.2)
    per_step = dict(
        stack.query("SELECT step_name, COUNT(*) FROM workflow_delivery GROUP BY step_name")
    )
    expected = len(users)
    assert per_step == {
        "SendWelcomeEmail": expected,
        "SetupUserAccount": expected,
        "LogNotification": expected,
    }
    runs = dict(
        stack.query(
            "SELECT status, COUNT(*) FROM workflow_run "
            "WHERE delivery_id IS NOT NULL GROUP BY status"
        )
    )
    assert runs == {"succeeded": 3 * expected}, runs
    counts = stack.query(
        "SELECT COUNT(*) FROM workflow_stateentry WHERE \"group\" = 'notification-counts' "
        "AND (value->>'count')::int = 1"
    )
    assert counts == [(expected,)]


@needs_postgres
@pytest.mark.parametrize(
    "broker",
    ["orm", pytest.param("redis", marks=needs_redis)],
)
def test_registration_flow_on_postgres(broker, database, flush_redis, tmp_path):
    """POST then status: active with both flags on PostgreSQL with either broker; a burst
    of 100 runs every delivery exactly once."""
    env = {"WORKFLOW_BROKER": broker, "REDIS_URL": REDIS_URL}
    with Stack(tmp_path, env=env, database_url=database, reload=False) as stack:
        user = register(stack)
        wait_active(stack, user["userId"], timeout=5)
        users = [user["userId"], *burst(stack, 99)]
        assert_each_delivery_ran_once(stack, users)


@needs_postgres
def test_the_web_server_and_the_workers_reuse_pooled_connections(database, tmp_path):
    """Each process keeps a pool of PostgreSQL connections: fifty requests, a
    registration run through its three handlers and the broker's polls meanwhile open
    a handful of sessions, not one per request, run and poll."""
    sessions = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    with Stack(tmp_path, database_url=database, reload=False) as stack:
        user = register(stack)
        wait_active(stack, user["userId"], timeout=10)
        before = stack.query(sessions)[0][0]
        user = register(stack)
        for _ in range(50):
            stack.get(f"/users/{user['userId']}/status")
        wait_active(stack, user["userId"], timeout=10)
        opened = stack.query(sessions)[0][0] - before
    # Stack.query itself opens one session per call (three here).
    assert opened <= 3 + 5, f"{opened} new sessions"


@needs_postgres
def test_more_handlers_than_pooled_connections_run_every_delivery_once(database, tmp_path):
    """With a pool of four connections per process (the claimer, the recorder and the
    keeper keep one each), the handlers of a burst, which hold one while they run, still
    all finish: a handler gives its connection back once it has logged or read state,
    and returns it at the end of its attempt."""
    env = {"DATABASE_POOL_SIZE": "4"}
    with Stack(tmp_path, env=env, database_url=database, reload=False) as stack:
        assert_each_delivery_ran_once(stack, burst(stack, 30))


@needs_postgres
def test_hung_handlers_that_read_state_hold_no_pooled_connection(database, tmp_path):
    """Ten handlers that read state, then hang (for a minute), with a pool of six
    connections per process: they hold none while they wait, so ten registrations go
    through in normal time beside them."""
    env = {**probe_env(tmp_path), "DATABASE_POOL_SIZE": "6"}
    with Stack(tmp_path, env=env, database_url=database, reload=False) as stack:
        trace = emit(stack, "probe.stuck", [{"n": n} for n in range(10)])
        hung = "SELECT COUNT(*) FROM workflow_run WHERE status = 'running' AND step_name = 'Stuck'"
        wait_for(lambda: stack.query(hung)[0][0] == 10, 15, "ten hung handlers", stack)
        started = time.monotonic()
        users = burst(stack, 10)
        for user_id in users:
            wait_active(stack, user_id, timeout=20)
        assert time.monotonic() - started < 20
        assert stack.query(hung)[0][0] == 10, "the hung handlers still hang"
        assert trace


@needs_postgres
def test_two_clusters_share_the_registrations_and_run_each_delivery_once(database, tmp_path):
    """runserver's cluster and a second qcluster on one PostgreSQL database: a burst of
    200 registrations (E2E_REGISTRATIONS), every user active, every delivery run
    exactly once, and both clusters ran handlers."""
    with Stack(tmp_path, database_url=database, reload=False) as stack:
        second = stack.spawn("qcluster", log_name="qcluster2.log")
        try:
            started = time.monotonic()
            users = burst(stack, REGISTRATIONS)
            assert_each_delivery_ran_once(stack, users)
            print(f"{REGISTRATIONS} registrations, 2 clusters: {time.monotonic() - started:.1f} s")
            theirs = {p.pid for p in psutil.Process(second.pid).children(recursive=True)}
            workers = stack.query(
                "SELECT DISTINCT split_part(worker, '/', 1) FROM workflow_run "
                "WHERE delivery_id IS NOT NULL"
            )
        finally:
            second.terminate()
            second.wait(timeout=15)
        pids = {int(worker.split(":")[1]) for (worker,) in workers}
        assert pids & theirs and pids - theirs, "both clusters ran handlers"


@needs_postgres
@needs_redis
def test_with_the_redis_broker_a_job_lost_with_its_worker_is_still_delivered(
    database, flush_redis, tmp_path
):
    """Jobs popped from Redis and never run (as when the worker that took them dies) do
    not lose the registration: the sweeper wakes its deliveries again."""
    env = {"WORKFLOW_BROKER": "redis", "REDIS_URL": REDIS_URL, "WORKFLOW_EMBEDDED_WORKERS": "0"}
    with Stack(tmp_path, env=env, database_url=database, reload=False) as stack:
        user = register(stack)
        flush(REDIS_URL)  # the two wake-up jobs are gone, as with a worker that died
        cluster = stack.spawn("qcluster", log_name="qcluster.log")
        try:
            wait_active(stack, user["userId"], timeout=30)
        finally:
            cluster.terminate()
            cluster.wait(timeout=15)


FORK_SCRIPT = """
import multiprocessing, os, sys
import django
django.setup()
from django.db import connection, connections
from workflow import forking

if sys.argv[1] == "install":
    forking.install()

def backend():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]

def child():
    print("child", backend(), flush=True)
    connections.close_all()
    connection.close_pool()  # as a process does when it stops

print("parent", backend(), flush=True)
connections.close_all()  # back to the pool, idle: what a child could inherit
process = multiprocessing.get_context("fork").Process(target=child)
process.start()
process.join()
print("parent", backend(), flush=True)
"""


def run_fork_script(database, mode):
    env = {**os.environ, "DATABASE_URL": database, "DJANGO_SETTINGS_MODULE": "config.settings"}
    return subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_postgres
def test_a_forked_process_never_uses_its_parents_pooled_connections(database):
    """With forking.install() (as qcluster does), a child forked while the parent's pool
    holds an idle connection opens its own; when it closes its pool, the parent's
    database connections still work. Without it the child would take the parent's
    socket and end its session on the server."""
    result = run_fork_script(database, "install")
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    pids = {who: [] for who in ("parent", "child")}
    for who, pid in lines:
        pids[who].append(int(pid))
    assert len(pids["parent"]) == 2
    assert pids["child"][0] not in pids["parent"], "the child used the parent's connection"


@needs_postgres
def test_the_fifo_checks_and_the_sweeper_read_only_live_deliveries(database):
    """With many finished deliveries in fifo groups (one group with thousands), the fifo
    checks and the sweeper's batch find a group's live deliveries through the partial
    index of live ones (migration 0004), not by reading the group's finished rows."""
    from bench import indexes

    indexes.fill(database, finished=20000, pending=2000)
    plans = indexes.plans(database)
    for query in (
        "fifo: an earlier one pending or running? (store.waits_its_turn)",
        "fifo: the next of the group (store record's next in group)",
        "sweep: the batch (store.take_due)",
    ):
        used = [index for _, index in indexes.scans(plans[query])]
        assert "workflow_delivery_fifo_live" in used, f"{query}:\n{plans[query]}"
        assert "Seq Scan on workflow_delivery" not in plans[query], plans[query]
