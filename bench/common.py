"""What the benchmark scripts share: configurations, scratch databases, percentiles, and
a description of the machine (printed with every figure: the machine is shared).

A *configuration* is a set of environment variables for the same project:

    sqlite     the embedded default: SQLite (WAL) and django-q2's ORM broker
    pg-orm     PostgreSQL (a scratch database) and the ORM broker
    pg-redis   PostgreSQL and django-q2's Redis broker (Redis db 8), channels-redis
"""

import contextlib
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/8"  # the benchmarks use Redis dbs 8 and 9 only
CONFIGS = ("sqlite", "pg-orm", "pg-redis")
BENCH_SETTINGS = {"DJANGO_SETTINGS_MODULE": "bench.settings"}


def percentile(values, p):
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def reachable(port):
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def loadavg():
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


def machine():
    """One line: cores, memory, Python, SQLite, PostgreSQL and Redis versions, load."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    parts = [
        f"{os.cpu_count()} cores",
        f"{memory:.0f} GiB",
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
    ]
    if reachable(5432):
        import psycopg

        with psycopg.connect(f"{PG}/postgres") as conn:
            version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        parts.append(f"PostgreSQL {version}")
    if reachable(6379):
        import redis

        parts.append(f"Redis {redis.Redis.from_url(REDIS_URL).info()['redis_version']}")
    return ", ".join(parts) + f"; {loadavg()}"


@contextlib.contextmanager
def scratch_postgres(prefix="bench"):
    """A new PostgreSQL database, dropped afterwards; yields its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{PG}/{name}"
    finally:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def flush_redis(url=REDIS_URL):
    import redis

    redis.Redis.from_url(url).flushdb()


@contextlib.contextmanager
def configuration(name, workdir):
    """The environment of configuration ``name`` (see the module's docstring)."""
    if name == "sqlite":
        yield {"DATABASE_URL": f"sqlite:///{Path(workdir) / 'db.sqlite3'}"}
        return
    with scratch_postgres() as url:
        env = {"DATABASE_URL": url}
        if name == "pg-redis":
            flush_redis()
            env.update(WORKFLOW_BROKER="redis", REDIS_URL=REDIS_URL)
        try:
            yield env
        finally:
            if name == "pg-redis":
                flush_redis()


def available(names):
    """``names`` less those whose services are not running (with a note)."""
    ok = []
    for name in names:
        needs = {"pg-orm": [5432], "pg-redis": [5432, 6379]}.get(name, [])
        missing = [port for port in needs if not reachable(port)]
        if missing:
            print(f"{name}: skipped, nothing listens on port(s) {missing}")
        else:
            ok.append(name)
    return ok


def in_child(script, args, env):
    """Run ``script --child ...`` with ``env`` (a fresh Django per configuration: its
    settings and django-q2's are read once per process); returns its last JSON line."""
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env={**os.environ, **BENCH_SETTINGS, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"{script} {' '.join(args)} exited with {result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_seconds(stack):
    """CPU seconds used so far, by part: this process (the load), the web server, the
    cluster's processes, and the PostgreSQL backends of the stack's database and Redis."""
    import psutil

    def used(proc):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system + times.children_user + times.children_system

    parts = {"bench process": used(psutil.Process())}
    cluster = {p.pid for p in stack.cluster_processes()}
    for proc in stack.all_processes():
        part = "cluster" if proc.pid in cluster else "web server"
        parts[part] = parts.get(part, 0.0) + used(proc)
    url = stack.env["DATABASE_URL"]
    database = url.rsplit("/", 1)[-1] if url.startswith("postgres") else None
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if database and cmdline.startswith("postgres:") and f" {database} " in cmdline:
            parts["postgres"] = parts.get("postgres", 0.0) + used(proc)
        elif proc.info["name"] == "redis-server":
            parts["redis"] = parts.get("redis", 0.0) + used(proc)
    return parts


def cpu_used(before, after):
    """CPU seconds by part between two ``cpu_seconds`` readings."""
    return {part: after[part] - before.get(part, 0.0) for part in after}


def setup_django():
    """django.setup() in this process, with the environment it was given."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
