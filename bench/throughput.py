"""Throughput: deliveries per second through emit -> handler -> recorded outcome.

    python bench/throughput.py [--events 10000] [--rounds 2] [--configs sqlite,pg-redis]
    python bench/throughput.py --quick
    python bench/throughput.py --limited   # and the same events under flow control

Starts `manage.py runserver` (its embedded cluster, 2 workers) with the bench settings,
then, from this process, emits ``--events`` events on ``bench.noop`` (one subscriber,
BenchNoop, whose handler does nothing), one emit per transaction as fast as it can,
and times from the first emit until every delivery is recorded as succeeded.

The baseline, same stack and same run: ``--events`` plain django-q2 ``async_task`` calls
of a no-op function (``save=True``, so each outcome is recorded as a django-q2 Task
row), timed from the first call until every Task row is there. Rounds alternate
baseline and framework, so a change in the machine's load hits both alike.

``--limited`` adds a third kind of round: the same events on ``bench.limited``, whose
step (BenchLimited) has flow control that never binds (``concurrency`` 1 per ``n``,
each event its own ``n``), so every claim takes the guarded path, one by one, with the
step's lock and a count of the key's running deliveries; reported as a ratio to the
framework's rounds without it.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BENCH_SETTINGS,
    available,
    configuration,
    cpu_seconds,
    cpu_used,
    in_child,
    loadavg,
    machine,
    setup_django,
)
from bench.stack import Stack  # noqa: E402

WORKERS = 2
TIMEOUT = 900


def wait_for(count_done, target, started, what):
    while (done := count_done()) < target:
        if time.monotonic() - started > TIMEOUT:
            raise TimeoutError(f"{what}: {done}/{target} after {TIMEOUT} s")
        time.sleep(0.1)
    return time.monotonic() - started


def in_threads(emitters, events, send):
    """Call ``send(n)`` for n in range(events), spread over ``emitters`` threads."""
    from django.db import connection

    def emit_share(first):
        try:
            for n in range(first, events, emitters):
                send(n)
        finally:
            connection.close()

    with ThreadPoolExecutor(emitters) as pool:
        list(pool.map(emit_share, range(emitters)))


def framework_round(events, done_before, emitters, step="BenchNoop", topic="bench.noop"):
    """Emit ``events`` no-op events; seconds until all their deliveries succeeded."""
    from workflow import bus
    from workflow.models import Delivery

    def succeeded():
        return Delivery.objects.filter(step_name=step, status="succeeded").count()

    def send(n):
        bus.emit(topic, {"n": n, "note": "a small payload, like a real event's"})

    started = time.monotonic()
    in_threads(emitters, events, send)
    emitted = time.monotonic() - started
    return wait_for(succeeded, done_before + events, started, "framework"), emitted


def limited_round(events, done_before, emitters):
    """The framework's round on the flow-controlled step (``--limited``)."""
    return framework_round(events, done_before, emitters, "BenchLimited", "bench.limited")


def baseline_round(events, done_before, emitters):
    """``events`` plain async_task calls of a no-op; seconds until all are recorded."""
    from django_q.models import Task
    from django_q.tasks import async_task

    def recorded():
        return Task.objects.filter(func="bench.probe.tasks.noop").count()

    def send(n):
        async_task("bench.probe.tasks.noop", n, save=True)

    started = time.monotonic()
    in_threads(emitters, events, send)
    emitted = time.monotonic() - started
    return wait_for(recorded, done_before + events, started, "baseline"), emitted


def batch_sizes():
    """Mean deliveries per claim and per completion transaction (runs of one batch
    share their start time, and their finish time)."""
    from django.db.models import Count

    from workflow.models import Run

    runs = Run.objects.filter(step_name="BenchNoop")
    claims = runs.values("started_at").annotate(n=Count("id")).count()
    completions = runs.values("finished_at").annotate(n=Count("id")).count()
    total = runs.count()
    return total / max(claims, 1), total / max(completions, 1)


def child(config, events, rounds, emitters, only=None, limited=False):
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-throughput-{config}-"))
    with configuration(config, workdir) as env:
        os.environ.update(env)
        stack_env = {**BENCH_SETTINGS, **env, "WORKFLOW_WORKERS": str(WORKERS)}
        with Stack(workdir, env=stack_env, reload=False) as stack:
            setup_django()
            result = {"config": config, "framework": [], "baseline": [], "limited": []}
            result["load"] = []
            kinds = [("baseline", baseline_round), ("framework", framework_round)]
            if limited:
                kinds.append(("limited", limited_round))
            for n in range(rounds):
                for name, run in kinds:
                    if only in (None, name):
                        before = cpu_seconds(stack)
                        seconds, emitted = run(events, n * events, emitters)
                        cpu = cpu_used(before, cpu_seconds(stack))
                        result[name].append({"seconds": seconds, "emitted": emitted, "cpu": cpu})
                result["load"].append(loadavg())
            result["memory"] = stack.memory()
            result["batches"] = batch_sizes()
    return result


def cpu_per_item(rounds, events):
    """Median CPU milliseconds per event, in all and by part."""
    parts = sorted({part for r in rounds for part in r["cpu"]})
    by_part = {p: statistics.median(r["cpu"].get(p, 0) for r in rounds) for p in parts}
    total = sum(by_part.values()) * 1000 / events
    shown = ", ".join(f"{p} {v * 1000 / events:.2f}" for p, v in by_part.items() if v > 0)
    return f"CPU {total:.2f} ms per event ({shown})"


def report(result, events, emitters):
    base = [events / r["seconds"] for r in result["baseline"]]
    ours = [events / r["seconds"] for r in result["framework"]]
    name = result["config"]
    if ours:
        print(
            f"{name:9} framework: {events:,} no-op events from {emitters} threads, "
            f"{WORKERS} workers: {statistics.median(ours):6.0f} deliveries/s "
            f"(rounds: {', '.join(f'{x:.0f}' for x in ours)}; emits took "
            f"{statistics.median(r['emitted'] for r in result['framework']):.1f} s; "
            f"{cpu_per_item(result['framework'], events)})"
        )
    if base:
        print(
            f"{name:9} baseline: django-q2 async_task of a no-op, same threads and workers: "
            f"{statistics.median(base):6.0f} tasks/s (rounds: {', '.join(f'{x:.0f}' for x in base)}"
            f"; calls took {statistics.median(r['emitted'] for r in result['baseline']):.1f} s; "
            f"{cpu_per_item(result['baseline'], events)})"
        )
    if ours:
        claims, completions = result["batches"]
        print(
            f"{name:9} framework batches: {claims:.1f} deliveries per claim, "
            f"{completions:.1f} per completion (means)"
        )
    if ours and base:
        ratio = statistics.median(ours) / statistics.median(base)
        print(f"{name:9} ratio framework / baseline = {ratio:.2f}x   [{'; '.join(result['load'])}]")
    if limited := [events / r["seconds"] for r in result.get("limited", [])]:
        print(
            f"{name:9} flow control (concurrency 1 per key, never binding): "
            f"{statistics.median(limited):6.0f} deliveries/s (rounds: "
            f"{', '.join(f'{x:.0f}' for x in limited)}; "
            f"{cpu_per_item(result['limited'], events)})"
        )
        if ours:
            ratio = statistics.median(limited) / statistics.median(ours)
            print(f"{name:9} ratio flow control / framework without it = {ratio:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--emitters", type=int, default=4, help="threads emitting")
    parser.add_argument("--configs", default="sqlite,pg-redis")
    parser.add_argument("--quick", action="store_true", help="500 events, 1 round, SQLite")
    parser.add_argument(
        "--limited", action="store_true", help="also the same events under flow control"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["baseline", "framework"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds, args.configs = 500, 1, "sqlite"
    if args.child:
        import json

        result = child(args.child, args.events, args.rounds, args.emitters, args.only, args.limited)
        print(json.dumps(result))
        return
    print(machine())
    for config in available(args.configs.split(",")):
        argv = ["--child", config, "--events", str(args.events), "--rounds", str(args.rounds)]
        argv += ["--emitters", str(args.emitters)] + (["--limited"] if args.limited else [])
        report(in_child(__file__, argv, {}), args.events, args.emitters)


if __name__ == "__main__":
    main()
