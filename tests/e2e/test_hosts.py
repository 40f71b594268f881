"""Two hosts' worth of processes on one PostgreSQL database and one Redis: two daphne
web servers (as in production, no workers beside them) and two ``manage.py qcluster``
processes. Registrations go to both web servers; both clusters run handlers, each
delivery exactly once; a worker's log line reaches websockets on both web servers.
"""

import json
import os
import threading
import time
import uuid
from contextlib import ExitStack

import psutil
import pytest
import requests
import websocket

from bench.stack import Stack
from tests.e2e.conftest import register
from tests.e2e.test_postgres import (
    PG,
    assert_each_delivery_ran_once,
    flush,
    needs_postgres,
    needs_redis,
    run_sql,
)

pytestmark = pytest.mark.e2e
REDIS_URL = "redis://127.0.0.1:6379/10"
REGISTRATIONS = int(os.environ.get("E2E_HOST_REGISTRATIONS", 200))
STAFF_PASSWORD = "staff-password-1234"


@pytest.fixture
def database():
    """A new PostgreSQL database, dropped after the test."""
    name = f"workflow_hosts_{uuid.uuid4().hex[:10]}"
    run_sql(f"CREATE DATABASE {name}")
    yield f"{PG}/{name}"
    run_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def redis_db():
    flush(REDIS_URL)
    yield REDIS_URL
    flush(REDIS_URL)


def log_in(server, username, password):
    """The admin's login form; returns the session cookie."""
    session = requests.Session()
    session.get(server.base + "/admin/login/", timeout=10)
    response = session.post(
        server.base + "/admin/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        timeout=10,
    )
    assert "sessionid" in session.cookies, response.text[:500]
    return session.cookies["sessionid"]


class Tail:
    """A websocket on the workbench's live feed, read on a thread of its own."""

    def __init__(self, server, session_id):
        url = server.base.replace("http://", "ws://") + "/workbench/ws/"
        self.ws = websocket.create_connection(
            url, cookie=f"sessionid={session_id}", origin=server.base, timeout=10
        )
        self.messages = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        self.ws.settimeout(0.5)
        while not self.stopping.is_set():
            try:
                self.messages.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                continue
            except websocket.WebSocketConnectionClosedException:
                return

    def welcome_traces(self):
        """Trace ids of the welcome email log lines received so far."""
        return {
            m["traceId"]
            for m in list(self.messages)
            if m.get("kind") == "log"
            and m["step"] == "SendWelcomeEmail"
            and m["message"] == "Sending welcome email"
        }

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.ws.close()


def cluster_of(worker, clusters):
    """Which cluster (index) the process named in a run's ``worker`` belongs to."""
    pid = int(worker.split(":")[1].split("/")[0])
    return next(i for i, pids in enumerate(clusters) if pid in pids)


@needs_postgres
@needs_redis
def test_two_web_servers_and_two_clusters_share_the_work(database, redis_db, tmp_path):
    """Registrations spread over two daphne servers: every user active, every delivery
    run exactly once, both clusters run handlers; websockets on both servers receive
    welcome email log lines written by workers of both clusters (through Redis)."""
    env = {"WORKFLOW_BROKER": "redis", "REDIS_URL": redis_db}
    stack = Stack(tmp_path, env=env, database_url=database)
    stack.manage("migrate", "--noinput", "-v0")
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import Permission, User; "
        f"staff = User.objects.create_user('staff', password='{STAFF_PASSWORD}', is_staff=True); "
        "staff.user_permissions.set(Permission.objects.filter(codename__in="
        "['view_run', 'view_logentry'], content_type__app_label='workflow'))",
    )
    with ExitStack() as running:
        clusters = []
        for n in (1, 2):
            process = stack.spawn("qcluster", log_name=f"qcluster{n}.log")
            running.callback(stop, process)
            clusters.append(process)
        servers = []
        for n in (1, 2):
            servers.append(stack.daphne(log_name=f"daphne{n}.log"))
            running.callback(servers[-1].stop)
        session_id = log_in(servers[0], "staff", STAFF_PASSWORD)
        tails = [Tail(server, session_id) for server in servers]
        for tail in tails:
            running.callback(tail.close)

        users = burst(servers, REGISTRATIONS)
        assert_each_delivery_ran_once(stack, users, web=servers[1])

        members = [cluster_pids(process) for process in clusters]
        runs = dict(
            stack.query(
                "SELECT trace_id, worker FROM workflow_run WHERE step_name = 'SendWelcomeEmail'"
            )
        )
        by_cluster = [
            {trace for trace, worker in runs.items() if cluster_of(worker, members) == i}
            for i in (0, 1)
        ]
        assert all(by_cluster), "both clusters ran welcome emails"
        for tail in tails:
            wait_for(lambda t=tail: all(t.welcome_traces() & mine for mine in by_cluster))


def burst(servers, count, clients=8):
    """``count`` registrations, alternating between the servers, from ``clients`` threads."""
    from concurrent.futures import ThreadPoolExecutor

    def one(n):
        return register(servers[n % len(servers)], f"User {n}")["userId"]

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(count)))


def cluster_pids(process):
    return {process.pid, *(p.pid for p in psutil.Process(process.pid).children(recursive=True))}


def stop(process):
    process.terminate()
    process.wait(timeout=15)


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
