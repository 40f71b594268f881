"""API overhead: requests per second of the RegisterUser step against a plain DRF view
doing the same validation and the same writes.

    python bench/api_overhead.py [--seconds 5] [--rounds 4] [--clients 4] [--configs sqlite]
    python bench/api_overhead.py --quick

Starts `manage.py runserver` (daphne) with the bench settings, which mount
``bench.views.PlainRegisterView`` at /bench/plain-register beside the API steps. The
plain view validates with the same serializer (and its Argon2 hash), writes the
account and the user's state entry through the same service in one transaction, logs
the same two lines and sends one django-q2 job per subscriber after the commit; the
step also records its event, deliveries, run, trace and log lines. DEBUG is off (as in
production; with DEBUG on, a step also checks its response against its schema), and
the workers are not started (WORKFLOW_EMBEDDED_WORKERS=0): this measures the web
server's side only, and the jobs wait in the broker.

The load: ``--clients`` threads of this process, each with a keep-alive connection,
POSTing new users as fast as answers come back, for ``--seconds`` per round; rounds
alternate step and plain view, so a change in the machine's load hits both.
"""

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BENCH_SETTINGS,
    available,
    configuration,
    in_child,
    loadavg,
    machine,
)
from bench.stack import Stack  # noqa: E402

PATHS = {"step": "/users/register", "plain": "/bench/plain-register"}
numbers = count()


def client(port, path, until):
    """POST new users until ``until`` (monotonic); returns (created, other answers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    created = other = 0
    try:
        while time.monotonic() < until:
            n = next(numbers)
            body = json.dumps(
                {"name": f"User {n}", "email": f"api{n}@example.com", "password": "securepass123"}
            )
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status == 201:
                created += 1
            else:
                other += 1
    finally:
        connection.close()
    return created, other


def load(port, path, clients, seconds):
    """Requests per second that got 201, with ``clients`` threads for ``seconds``."""
    started = time.monotonic()
    until = started + seconds
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda _: client(port, path, until), range(clients)))
    elapsed = time.monotonic() - started
    created = sum(c for c, _ in results)
    failed = sum(o for _, o in results)
    if failed:
        raise RuntimeError(f"{path}: {failed} answers were not 201")
    return created / elapsed


def child(config, seconds, rounds, clients):
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-api-{config}-"))
    with configuration(config, workdir) as env:
        stack_env = {
            **BENCH_SETTINGS,
            **env,
            "WORKFLOW_EMBEDDED_WORKERS": "0",
            "DJANGO_DEBUG": "0",
        }
        with Stack(workdir, env=stack_env, reload=False) as stack:
            for path in PATHS.values():  # warm up both
                load(stack.port, path, clients, 1)
            result = {"config": config, "step": [], "plain": [], "load": []}
            for _ in range(rounds):
                for name, path in PATHS.items():
                    result[name].append(load(stack.port, path, clients, seconds))
                result["load"].append(loadavg())
    return result


def report(result, clients):
    name = result["config"]
    step, plain = statistics.median(result["step"]), statistics.median(result["plain"])
    rounds = ", ".join(f"{x:.1f}" for x in result["step"])
    print(
        f"{name:9} RegisterUser step: {step:6.1f} requests/s ({clients} clients; rounds {rounds})"
    )
    rounds = ", ".join(f"{x:.1f}" for x in result["plain"])
    print(
        f"{name:9} baseline: plain DRF APIView, same work: {plain:6.1f} requests/s "
        f"(rounds {rounds})"
    )
    print(f"{name:9} ratio step / plain = {step / plain:.2f}x   [{'; '.join(result['load'])}]")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--configs", default="sqlite,pg-redis")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s each, SQLite only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.configs = 2, 1, "sqlite"
    if args.child:
        print(json.dumps(child(args.child, args.seconds, args.rounds, args.clients)))
        return
    print(machine())
    for config in available(args.configs.split(",")):
        argv = ["--child", config, "--seconds", str(args.seconds), "--rounds", str(args.rounds)]
        report(in_child(__file__, argv + ["--clients", str(args.clients)], {}), args.clients)


if __name__ == "__main__":
    main()
