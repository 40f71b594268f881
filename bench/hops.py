"""Hop latency: from emit() to the subscriber's handler starting, on an idle system.

    python bench/hops.py [--samples 200] [--configs sqlite,pg-orm,pg-redis]
    python bench/hops.py --quick

Starts `manage.py runserver` (its embedded cluster, 2 workers) with the bench settings.
From this process, one at a time with an idle pause between them, it emits an event on
``bench.hop`` carrying the wall-clock time just before ``emit()``; the BenchHop
handler appends that time and its own start time to a file. The hop is the
difference.

The baseline, interleaved with the framework's samples in the same run: a plain
django-q2 ``async_task`` of a function that appends the same two times (the queue's own
hop, with the same broker and workers).
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BENCH_SETTINGS,
    available,
    configuration,
    in_child,
    loadavg,
    machine,
    percentile,
    setup_django,
)
from bench.stack import Stack  # noqa: E402

WORKERS = 2


class Stamps:
    """The lines handlers append to the stamps file: ``sent started``."""

    def __init__(self, path):
        self.path = path
        self.path.touch()
        self.read = 0

    def wait(self, sent, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.path.stat().st_size > self.read:
                with self.path.open() as file:
                    file.seek(self.read)
                    text = file.read()
                if text.endswith("\n"):
                    self.read += len(text.encode())
                    for line in text.splitlines():
                        got, started = map(float, line.split())
                        if got == sent:
                            return (started - sent) * 1000
            time.sleep(0.0005)
        raise TimeoutError(f"no handler started within {timeout} s of {sent}")


def hop(stamps, send):
    sent = time.time()
    send(sent)
    return stamps.wait(sent)


def child(config, samples):
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-hops-{config}-"))
    stamps_path = workdir / "stamps.txt"
    with configuration(config, workdir) as env:
        os.environ.update(env)
        stack_env = {
            **BENCH_SETTINGS,
            **env,
            "WORKFLOW_WORKERS": str(WORKERS),
            "BENCH_STAMPS": str(stamps_path),
        }
        with Stack(workdir, env=stack_env, reload=False):
            setup_django()
            from django_q.tasks import async_task

            from workflow import bus

            stamps = Stamps(stamps_path)

            def framework(sent):
                bus.emit("bench.hop", {"sent": sent})

            def baseline(sent):
                async_task("bench.probe.tasks.stamp", sent)

            for _ in range(5):  # warm up: connections, imports, the handler threads
                hop(stamps, framework)
                hop(stamps, baseline)
            result = {"config": config, "framework": [], "baseline": []}
            for _ in range(samples):
                for name, send in (("framework", framework), ("baseline", baseline)):
                    time.sleep(random.uniform(0.05, 0.1))  # idle between hops
                    result[name].append(hop(stamps, send))
            result["load"] = loadavg()
    return result


def summary(values):
    return (
        f"median {statistics.median(values):6.1f} ms, p99 {percentile(values, 99):6.1f} ms, "
        f"max {max(values):6.1f} ms"
    )


def report(result):
    name, ours, base = result["config"], result["framework"], result["baseline"]
    print(f"{name:9} hop emit -> handler start (n={len(ours)}): {summary(ours)}")
    print(f"{name:9} baseline: async_task -> function start (n={len(base)}): {summary(base)}")
    print(
        f"{name:9} ratio of medians framework / baseline = "
        f"{statistics.median(ours) / statistics.median(base):.2f}x   [{result['load']}]"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--configs", default="sqlite,pg-orm,pg-redis")
    parser.add_argument("--quick", action="store_true", help="20 samples, SQLite only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.samples, args.configs = 20, "sqlite"
    if args.child:
        print(json.dumps(child(args.child, args.samples)))
        return
    print(machine())
    for config in available(args.configs.split(",")):
        report(in_child(__file__, ["--child", config, "--samples", str(args.samples)], {}))


if __name__ == "__main__":
    main()
