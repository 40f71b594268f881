"""The benchmark scripts still run: each one's --quick mode, once, in a subprocess.

Benchmarks are measured in bench/, never asserted here: this only checks that each
script exits 0 and prints its figure lines (see BENCHMARKS.md for the figures).
"""

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"[\d.,]+"

# script -> patterns its output must match (one figure line each)
SCRIPTS = {
    "seed_latency.py": [
        rf"sqlite .* POST returned -> active \(n=5\): median {NUMBER} s, p95 {NUMBER} s",
        rf"as recorded in the database .* median {NUMBER} s, p95 {NUMBER} s",
        rf"baseline: the flow's floor .* ratio median / floor = {NUMBER}x",
    ],
    "bookings.py": [
        rf"sqlite .* saga, POST returned -> confirmed \(n=5\): median {NUMBER} s, p95 {NUMBER} s",
        rf"baseline: the flow's floor .* ratio median / floor = {NUMBER}x",
    ],
    "hops.py": [
        rf"sqlite .* hop emit -> handler start \(n=20\): median +{NUMBER} ms, p99 +{NUMBER} ms",
        rf"baseline: async_task -> function start .* median +{NUMBER} ms",
        rf"ratio of medians framework / baseline = {NUMBER}x",
    ],
    "throughput.py": [
        rf"framework: 500 no-op events .* {NUMBER} deliveries/s .* CPU {NUMBER} ms per event",
        rf"baseline: django-q2 async_task .* {NUMBER} tasks/s",
        rf"ratio framework / baseline = {NUMBER}x",
    ],
    "api_overhead.py": [
        rf"RegisterUser step: +{NUMBER} requests/s",
        rf"baseline: plain DRF APIView, same work: +{NUMBER} requests/s",
        rf"ratio step / plain = {NUMBER}x",
    ],
    "growth.py": [
        rf"state\.get .* ratio +{NUMBER}x",
        rf"store\.claim\(\[id\]\) .* ratio +{NUMBER}x",
        rf"sweep\(\) .* ratio +{NUMBER}x",
    ],
    "memory.py": [
        rf"memory idle .* PSS sum {NUMBER} MB, RSS sum {NUMBER} MB",
        rf"memory after 400 events .* PSS sum {NUMBER} MB",
        rf"memory growth between the last two rounds: PSS [+-]{NUMBER} MB",
    ],
    "workbench_pages.py": [rf"logs +{NUMBER} ms +{NUMBER} ms +{NUMBER}x"],
    "burst.py": [
        rf"baseline: POST->active, one user on an idle stack: median {NUMBER} s",
        rf"burst: 20 registrations .* all active in {NUMBER} s",
    ],
    "cpu.py": [
        rf"baseline: one password hash .*: {NUMBER} ms CPU",
        rf"sqlite: 20 registrations from 8 clients: all deliveries finished in {NUMBER} s",
        rf"sqlite: CPU web server {NUMBER} s \+ cluster {NUMBER} s = {NUMBER} s: {NUMBER} ms per",
        rf"queue wait, delivery created -> first run started \(n=60\): median {NUMBER} ms",
        rf"beside an idle server \(n=\d+\): median {NUMBER} ms, p95 {NUMBER} ms",
        rf"ratio CPU per registration / one password hash = {NUMBER}x",
        rf"sqlite: floor, a plain DRF view and plain django-q2 tasks .*: {NUMBER} ms per regis",
        rf"ratio CPU per registration / the floor = {NUMBER}x \(web {NUMBER}x, cluster {NUMBER}x\)",
    ],
    "chaos.py": [
        r"baseline \(no kill\): 30 registrations",
        r"1 worker kills: 30 registrations, all settled in",
        r"lost \d+, duplicated after success \d+",
    ],
}
if Path("/usr/bin/chromium").exists():
    SCRIPTS["live_delay.py"] = [
        rf"in-memory +lines +\d+/\d+ +median +{NUMBER} ms +p99 +{NUMBER} ms .* ratio +{NUMBER}x"
    ]


def run_quick(script):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return script, done, time.monotonic() - started


def test_every_benchmark_script_runs_its_quick_mode():
    """Each bench script's --quick exits 0 and prints each of its figure lines."""
    with ThreadPoolExecutor(len(SCRIPTS)) as pool:  # all at once: mostly they wait
        results = list(pool.map(run_quick, SCRIPTS))
    failures = []
    for script, done, seconds in results:
        print(f"{script}: exit {done.returncode} in {seconds:.0f} s")
        if done.returncode != 0:
            failures.append(f"{script} exited {done.returncode}:\n{done.stderr[-3000:]}")
            continue
        for pattern in SCRIPTS[script]:
            if not re.search(pattern, done.stdout):
                failures.append(f"{script}: no line matches {pattern!r} in:\n{done.stdout}")
    assert not failures, "\n\n".join(failures)
