"""CPU per registration: a burst of registrations against `manage.py runserver` as the
README starts it, counted in CPU seconds of every process, against one password hash.

    python bench/cpu.py                 # --users 200 --clients 8 --configs sqlite,pg-redis
    python bench/cpu.py --quick         # 20 users, SQLite only

For each configuration (bench/common.py) it starts runserver with its embedded cluster,
registers a few users to warm it up, then sends --users registrations from --clients
threads (POST only: nobody polls the status endpoint) and waits until every delivery has
finished, reading the database beside the server. It prints:

- the wall time from the first POST until the last delivery finished, and until the
  last POST was answered;
- the CPU seconds (user + system, from /proc) the burst cost each process: the web
  server (runserver, daphne inside it), each process of the cluster by its role, and on
  PostgreSQL + Redis the database's backends and Redis; in all, and per registration;
- the queue wait of the burst's deliveries, from the delivery's creation to the start of
  its first run: median, p95, max;
- as the baseline, measured in the same run: the CPU of one password hash with the
  project's hasher (config.hashers, Argon2id), and the ratio of a registration's CPU to it;
- the floor, measured in the same run on a second stack (bench.settings): the same
  registrations through a plain DRF view (bench.views.PlainRegisterView) and three plain
  django-q2 tasks per user (bench.probe.tasks: the same services, without their sleeps),
  on the same runserver, cluster and broker; its CPU per registration, against the hash,
  and the framework's against it (--no-floor skips it).
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BENCH_SETTINGS,
    available,
    configuration,
    machine,
    percentile,
)
from bench.cpu_parts import cpu_by_part, readings, split  # noqa: E402
from bench.stack import Stack  # noqa: E402

WARM_UP = 4
DELIVERIES_PER_USER = 3
PLAIN = "/bench/plain-register"  # bench.views.PlainRegisterView (bench.settings)


def hash_cpu(samples=20):
    """Median CPU seconds of one hash with the project's password hasher."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password

    make_password("securepass123")  # warm: the first call loads argon2
    times = []
    for _ in range(samples):
        started = time.thread_time()
        make_password("securepass123")
        times.append(time.thread_time() - started)
    return statistics.median(times)


def register(stack, n, prefix, path="/users/register"):
    body = {"name": f"User {n}", "email": f"{prefix}{n}@example.com", "password": "securepass123"}
    response = stack.post(path, body)
    assert response.status_code == 201, response.text
    return response.json()["userId"]


def finished(stack):
    return stack.query(
        "SELECT COUNT(*) FROM workflow_delivery WHERE status IN ('succeeded', 'dead')"
    )[0][0]


def wait_until(stack, done, what, timeout=600):
    """Poll ``done()`` until it is true; the moment it was (monotonic)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not after {timeout} s:\n{stack.log()[-3000:]}")
        time.sleep(0.02)
    return time.monotonic()


def settle(stack, deliveries, timeout=600):
    return wait_until(stack, lambda: finished(stack) >= deliveries, "settled", timeout)


def queue_waits(stack, after_id):
    rows = stack.query(
        "SELECT d.created_at, r.started_at FROM workflow_delivery d "
        "JOIN workflow_run r ON r.delivery_id = d.id AND r.attempt = 1 WHERE d.id > ?",
        (after_id,),
    )

    def moment(value):
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    return [(moment(started) - moment(created)).total_seconds() for created, started in rows]


def start_profiles(stack, directory):
    """py-spy, sampling each Python process of the stack (not idle threads) into
    ``directory``/<pid>.txt in its raw format (one line per stack and its count)."""
    directory.mkdir(parents=True, exist_ok=True)
    spies = []
    for proc in stack.all_processes():
        try:
            if "python" not in proc.name():
                continue
        except psutil.Error:
            continue
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--nonblocking",
                "--gil",
                "-r",
                "100",
                "-f",
                "raw",
                "-o",
                str(directory / f"{proc.pid}.txt"),
                "-p",
                str(proc.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        spies.append(spy)
    time.sleep(1)  # py-spy attaches
    return spies


def stop_profiles(spies):
    for spy in spies:
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        spy.wait(timeout=30)


def settled(stack, timeout=120):
    """Wait until no delivery is pending or running."""
    live = "SELECT COUNT(*) FROM workflow_delivery WHERE status IN ('pending', 'running')"
    wait_until(stack, lambda: not stack.query(live)[0][0], "settled", timeout)


def trickle(stack, clients, seconds, prefix):
    """A registration every 0.25 s for ``seconds``, while ``clients`` threads ask for a
    user's status as fast as the server answers (none: an idle server); the queue
    waits of the registrations' deliveries, and the status calls answered per second."""
    last_id = stack.query("SELECT COALESCE(MAX(id), 0) FROM workflow_delivery")[0][0]
    status = f"/users/{register(stack, 0, prefix + 'probe')}/status"
    settled(stack)
    last_id = stack.query("SELECT COALESCE(MAX(id), 0) FROM workflow_delivery")[0][0]
    stop, answered = threading.Event(), []

    def ask():
        while not stop.is_set():
            assert stack.get(status).status_code == 200
            answered.append(1)

    askers = [threading.Thread(target=ask) for _ in range(clients)]
    for thread in askers:
        thread.start()
    time.sleep(1 if clients else 0)  # the load is on before the first registration
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        register(stack, n, prefix)
        n += 1
        time.sleep(max(0.0, started + n * 0.25 - time.monotonic()))
    stop.set()
    for thread in askers:
        thread.join()
    settled(stack)
    return queue_waits(stack, last_id), len(answered) / (time.monotonic() - started)


def run(config, users, clients, workdir, profile=None, trickle_seconds=10):
    with configuration(config, workdir) as env, Stack(Path(workdir) / config, env=env) as stack:
        for n in range(WARM_UP):
            register(stack, n, "warm")
        settle(stack, WARM_UP * DELIVERIES_PER_USER)
        last_id = stack.query("SELECT COALESCE(MAX(id), 0) FROM workflow_delivery")[0][0]
        time.sleep(1)  # the warm-up's tail (log batches, live messages) is not the burst's
        spies = start_profiles(stack, Path(profile) / config) if profile else []
        before = readings(stack)
        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda n: register(stack, n, "user"), range(users)))
        posted = time.monotonic() - started
        ended = settle(stack, (WARM_UP + users) * DELIVERIES_PER_USER)
        after = readings(stack)
        stop_profiles(spies)
        waits = queue_waits(stack, last_id)
        idle, _ = trickle(stack, 0, trickle_seconds, "idle")
        busy, rate = trickle(stack, clients, trickle_seconds, "busy")
        dead = stack.query("SELECT COUNT(*) FROM workflow_delivery WHERE status = 'dead'")
        assert dead[0][0] == 0, "a delivery died: see runserver.log"
        return {
            "elapsed": ended - started,
            "posted": posted,
            "parts": cpu_by_part(stack, before, after),
            "waits": waits,
            "idle": idle,
            "busy": busy,
            "rate": rate,
        }


def plain_done(stack):
    """Users whose plain tasks have finished: the notification's task counts them, and
    the setup task writes the profile (then the user's status, in the same task)."""
    return stack.query(
        "SELECT COUNT(*) FROM workflow_stateentry WHERE \"group\" = 'notification-counts'"
        " UNION ALL "
        "SELECT COUNT(*) FROM workflow_stateentry WHERE \"group\" = 'user-profiles'"
    )


def settle_plain(stack, users, timeout=600):
    def done():
        return all(count >= users for (count,) in plain_done(stack))

    return wait_until(stack, done, "the plain tasks finished", timeout)


def floor(config, users, clients, workdir):
    """The same registrations without the framework: ``bench.views.PlainRegisterView``
    (the same serializer, hash, account and state writes, log lines) on the same
    runserver, its background work three plain django-q2 tasks per user
    (``bench.probe.tasks``: the same services, their sleeps left out) on the same
    cluster and broker. Its CPU is the part of a registration this stack cannot avoid."""
    env_dir = Path(workdir) / f"{config}-floor"
    with (
        configuration(config, env_dir) as env,
        Stack(env_dir, env={**env, **BENCH_SETTINGS}) as stack,
    ):
        for n in range(WARM_UP):
            register(stack, n, "warm", PLAIN)
        settle_plain(stack, WARM_UP)
        time.sleep(1)
        before = readings(stack)
        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda n: register(stack, n, "user", PLAIN), range(users)))
        posted = time.monotonic() - started
        ended = settle_plain(stack, WARM_UP + users)
        after = readings(stack)
        return {
            "elapsed": ended - started,
            "posted": posted,
            "parts": cpu_by_part(stack, before, after),
        }


def report_floor(config, users, result, plain, hash_seconds):
    web, cluster, services = (v / users * 1000 for v in split(plain["parts"]))
    total = web + cluster + services
    ours = sum(result["parts"].values()) / users * 1000
    ours_web, ours_cluster, _ = (v / users * 1000 for v in split(result["parts"]))
    print(
        f"{config}: floor, a plain DRF view and plain django-q2 tasks doing the same work "
        f"(no sleeps): {total:.1f} ms per registration ({web:.1f} web, {cluster:.1f} cluster"
        + (f", {services:.1f} database and Redis" if services else "")
        + f"), {total / 1000 / hash_seconds:.2f}x the hash; POSTs answered in "
        f"{plain['posted']:.2f} s, tasks done in {plain['elapsed']:.2f} s"
    )
    print(
        f"{config}: ratio CPU per registration / the floor = {ours / total:.2f}x "
        f"(web {ours_web / web:.2f}x, cluster {ours_cluster / cluster:.2f}x)"
    )


def report(config, users, clients, result, hash_seconds):
    parts = result["parts"]
    services = {k: v for k, v in parts.items() if k in ("postgres", "redis")}
    web, cluster, _ = split(parts)
    total = sum(parts.values())
    waits = result["waits"]
    print(
        f"{config}: {users} registrations from {clients} clients: all deliveries finished "
        f"in {result['elapsed']:.2f} s (POSTs answered in {result['posted']:.2f} s)"
    )
    print(
        f"{config}: CPU seconds by process: "
        + ", ".join(f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    )
    print(
        f"{config}: CPU web server {web:.2f} s + cluster {cluster:.2f} s"
        + (f" + {' + '.join(f'{k} {v:.2f} s' for k, v in services.items())}" if services else "")
        + f" = {total:.2f} s: {total / users * 1000:.1f} ms per registration "
        f"({web / users * 1000:.1f} web, {cluster / users * 1000:.1f} cluster"
        + (f", {sum(services.values()) / users * 1000:.1f} database and Redis" if services else "")
        + ")"
    )
    print(
        f"{config}: queue wait, delivery created -> first run started (n={len(waits)}): "
        f"median {statistics.median(waits) * 1000:.0f} ms, p95 "
        f"{percentile(waits, 95) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms"
    )
    for name, label in (
        ("idle", "an idle server"),
        ("busy", f"{result['rate']:.0f} status calls/s"),
    ):
        waits = result[name]
        print(
            f"{config}: queue wait, a registration every 0.25 s beside {label} "
            f"(n={len(waits)}): median {statistics.median(waits) * 1000:.0f} ms, p95 "
            f"{percentile(waits, 95) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms"
        )
    print(
        f"{config}: ratio CPU per registration / one password hash = "
        f"{total / users / hash_seconds:.2f}x"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--configs", default="sqlite,pg-redis")
    parser.add_argument("--quick", action="store_true", help="20 users, SQLite only")
    parser.add_argument(
        "--profile", metavar="DIR", help="sample every process with py-spy into DIR/<config>/"
    )
    parser.add_argument("--keep", metavar="DIR", help="keep each run's database and log in DIR")
    parser.add_argument(
        "--trickle",
        type=float,
        default=10,
        metavar="SECONDS",
        help="how long the queue wait is measured beside an idle and a busy server",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the plain DRF + django-q2 floor run"
    )
    args = parser.parse_args()
    if args.quick:
        args.users, args.configs, args.trickle = 20, "sqlite", 1
    print(machine())
    hash_seconds = hash_cpu()
    print(
        f"baseline: one password hash (config.hashers, Argon2id): {hash_seconds * 1000:.1f} ms CPU"
    )
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as scratch:
        workdir = args.keep or scratch
        for config in available(args.configs.split(",")):
            result = run(config, args.users, args.clients, workdir, args.profile, args.trickle)
            report(config, args.users, args.clients, result, hash_seconds)
            if not args.no_floor:
                plain = floor(config, args.users, args.clients, workdir)
                report_floor(config, args.users, result, plain, hash_seconds)


if __name__ == "__main__":
    main()
