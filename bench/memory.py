"""Memory of `manage.py runserver` with its embedded workers: idle, then after each
10,000 events.

    python bench/memory.py [--events 10000] [--rounds 3]
    python bench/memory.py --quick

Starts runserver as the README does (autoreloader, daphne, embedded cluster with one
worker per core) on SQLite with the bench settings, lets it settle, reads its memory,
then emits ``--events`` no-op events (BenchNoop) from 4 threads of this process, waits
until every delivery succeeded and reads it again, ``--rounds`` times.

Memory is summed over runserver's processes: PSS (each shared page split between the
processes that map it: the fair total for forked processes) and RSS (shared pages
counted once per process). The baseline is the idle reading of the same run; growth
is the change between the last two rounds.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCH_SETTINGS, configuration, in_child, loadavg, machine, setup_django  # noqa: E402
from bench.stack import Stack  # noqa: E402
from bench.throughput import framework_round  # noqa: E402

EMITTERS = 4


def settled_memory(stack, seconds=3):
    """(RSS sum, PSS sum, processes) in MB after ``seconds`` of quiet."""
    time.sleep(seconds)
    rss, pss = stack.memory()
    return {"rss": rss, "pss": pss, "processes": len(stack.all_processes())}


def child(events, rounds):
    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    with configuration("sqlite", workdir) as env:
        os.environ.update(env)
        with Stack(workdir, env={**BENCH_SETTINGS, **env}) as stack:
            setup_django()
            framework_round(50, 0, EMITTERS)  # warm up: handler threads, connections
            result = {"idle": settled_memory(stack), "rounds": []}
            peak = [0.0, 0.0]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    rss, pss = stack.memory()
                    peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
                    time.sleep(0.5)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            for n in range(rounds):
                seconds, _ = framework_round(events, 50 + n * events, EMITTERS)
                result["rounds"].append({**settled_memory(stack), "seconds": seconds})
            done.set()
            sampler.join()
            result["peak"] = {"rss": peak[0], "pss": peak[1]}
            result["load"] = loadavg()
    return result


def report(result, events):
    idle = result["idle"]
    print(
        f"memory idle (runserver + embedded cluster, {idle['processes']} processes): "
        f"PSS sum {idle['pss']:.0f} MB, RSS sum {idle['rss']:.0f} MB"
    )
    for n, got in enumerate(result["rounds"], 1):
        print(
            f"memory after {n * events:,} events ({got['seconds']:.0f} s for this {events:,}): "
            f"PSS sum {got['pss']:.0f} MB, RSS sum {got['rss']:.0f} MB; "
            f"ratio to idle (PSS) {got['pss'] / idle['pss']:.2f}x"
        )
    print(
        f"memory peak while running: PSS sum {result['peak']['pss']:.0f} MB, "
        f"RSS sum {result['peak']['rss']:.0f} MB"
    )
    if len(result["rounds"]) >= 2:
        last, before = result["rounds"][-1], result["rounds"][-2]
        pss, rss = last["pss"] - before["pss"], last["rss"] - before["rss"]
        print(
            f"memory growth between the last two rounds: PSS {pss:+.1f} MB, "
            f"RSS {rss:+.1f} MB   [{result['load']}]"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 200 events")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 200, 2
    if args.child:
        print(json.dumps(child(args.events, args.rounds)))
        return
    print(machine())
    argv = ["--child", "--events", str(args.events), "--rounds", str(args.rounds)]
    report(in_child(__file__, argv, {}), args.events)


if __name__ == "__main__":
    main()
