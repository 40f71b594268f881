"""A burst of registrations against `manage.py runserver` on the embedded default.

    python bench/burst.py [--users 200] [--clients 8]
    python bench/burst.py --quick

Prints the time from the first POST until every user is active with both flags,
the POST latency, the memory of runserver and its workers (peak RSS sum and PSS
sum, sampled every 0.2 s), and, as a baseline measured in the same run, the median
time from POST to active for a single user on the idle stack.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack  # noqa: E402


def register(stack, n):
    body = {
        "name": f"User {n}",
        "email": f"user{n}-{time.time_ns()}@example.com",
        "password": "securepass123",
    }
    started = time.monotonic()
    response = stack.post("/users/register", body)
    assert response.status_code == 201, response.text
    return response.json()["userId"], time.monotonic() - started


def active(stack, user_id):
    body = stack.get(f"/users/{user_id}/status").json()
    return body["status"] == "active" and body["emailSent"] and body["accountSetup"]


def time_to_active(stack, samples):
    times = []
    for n in range(samples):
        started = time.monotonic()
        user_id, _ = register(stack, f"single{n}")
        while not active(stack, user_id):
            time.sleep(0.02)
        times.append(time.monotonic() - started)
    return times


def burst(stack, users, clients):
    peak = [0.0, 0.0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss, pss = stack.memory()
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda n: register(stack, n), range(users)))
    posted = time.monotonic() - started
    pending = {user_id for user_id, _ in results}
    while pending:
        pending = {u for u in pending if not active(stack, u)}
        if time.monotonic() - started > 300:
            raise TimeoutError(f"{len(pending)} users still not active after 300 s")
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    latencies = sorted(latency for _, latency in results)
    return elapsed, posted, latencies, peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="20 users, 3 samples")
    args = parser.parse_args()
    if args.quick:
        args.users, args.samples = 20, 3
    with tempfile.TemporaryDirectory() as tmp, Stack(tmp) as stack:
        single = time_to_active(stack, args.samples)
        idle_rss, idle_pss = stack.memory()
        elapsed, posted, latencies, peak = burst(stack, args.users, args.clients)
        stop_seconds, _ = stack.interrupt()
    print(
        f"baseline: POST->active, one user on an idle stack: median "
        f"{statistics.median(single):.3f} s (n={len(single)}, min {min(single):.3f}, "
        f"max {max(single):.3f})"
    )
    print(
        f"burst: {args.users} registrations from {args.clients} clients: all active "
        f"in {elapsed:.2f} s (POSTs done in {posted:.2f} s; POST p50 "
        f"{latencies[len(latencies) // 2] * 1000:.0f} ms, p95 "
        f"{latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms)"
    )
    print(f"ratio: burst time / single-user time = {elapsed / statistics.median(single):.1f}x")
    print(
        f"memory: idle (after warm-up) RSS sum {idle_rss:.0f} MB, PSS sum {idle_pss:.0f} MB; "
        f"peak RSS sum {peak[0]:.0f} MB, PSS sum {peak[1]:.0f} MB"
    )
    print(f"stop: Ctrl-C to all processes gone: {stop_seconds:.2f} s")


if __name__ == "__main__":
    main()
