"""Growth: state.get and the runtime's claim with 1,000 rows against 1,000,000.

    python bench/growth.py [--rows 1000000] [--configs sqlite,pg-orm]
    python bench/growth.py --quick

In process (no server), on a database of its own (a SQLite file, or a scratch
PostgreSQL database): fills the state table and the delivery table with ``--rows``
rows each (deliveries: all succeeded but the ones the benchmark claims), and times

- ``StateStore().get(group, key)`` of random existing keys (the handler's read),
- ``store.claim([id])``, the claimer's claim of one woken delivery (compare-and-set
  UPDATE, read back, INSERT of its run, in a transaction), and the same of a delivery
  whose lease ran out, the one-by-one claim fifo and presumed-dead deliveries take,
- ``sweep()``, the ticker's query for unwoken due deliveries, four times a second.

The baseline is the same operations on 1,000 rows, measured in the same run.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BENCH_SETTINGS,
    available,
    configuration,
    in_child,
    loadavg,
    machine,
    setup_django,
)

SMALL = 1_000
CHUNK = 20_000
GROUPS = ["users", "emails", "user-settings", "user-profiles", "notification-counts"]


def timed(calls, action):
    """Median microseconds of ``action(n)`` over ``calls`` calls."""
    times = []
    for n in range(calls):
        started = time.perf_counter()
        action(n)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def insert(table, columns, rows):
    from django.db import connection, transaction

    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    batch = []
    with transaction.atomic(), connection.cursor() as cursor:
        for row in rows:
            batch.append(row)
            if len(batch) == CHUNK:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)


def fill(first, last):
    """State entries and succeeded deliveries number ``first`` to ``last - 1``."""
    from django.db import connection

    def at(moment):
        return connection.ops.adapt_datetimefield_value(moment)

    now = at(datetime.now(UTC))
    insert(
        '"workflow_stateentry"',
        ['"group"', "key", "value", "created_at", "updated_at"],
        (
            (
                GROUPS[n % len(GROUPS)],
                f"user-{n}",
                json.dumps({"n": n, "status": "active"}),
                now,
                now,
            )
            for n in range(first, last)
        ),
    )
    insert(
        "workflow_delivery",
        ["step_name", "trace_id", "status", "attempts", "due_at", "created_at", "last_error"],
        (
            ("SendWelcomeEmail", f"{n:032x}", "succeeded", 1, now, now, "")
            for n in range(first, last)
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def pending(count):
    """``count`` new due pending deliveries to the bench's no-op step; their ids."""
    from workflow.models import Delivery

    now = datetime.now(UTC) - timedelta(seconds=1)
    rows = [Delivery(step_name="BenchNoop", trace_id="b" * 32, due_at=now) for _ in range(count)]
    return [d.pk for d in Delivery.objects.bulk_create(rows)]


def measure(rows, calls):
    from workflow.models import Delivery
    from workflow.state import StateStore
    from workflow.store import store
    from workflow.ticker import sweep

    state = StateStore()
    keys = [(GROUPS[n % len(GROUPS)], f"user-{n}") for n in random.sample(range(rows), calls)]
    figures = {"state.get": timed(calls, lambda n: state.get(*keys[n]))}
    ids = pending(2 * calls)
    figures["store.claim([id])"] = timed(calls, lambda n: store.claim([ids[n]], "bench"))
    figures["claim, lease run out"] = timed(calls, lambda n: expired(ids[n]))
    Delivery.objects.filter(pk__in=ids).update(status="succeeded")
    pending(10)  # a few unwoken deliveries for the sweeper to find
    figures["sweep()"] = timed(min(calls, 200), lambda n: sweep())
    Delivery.objects.filter(step_name="BenchNoop").update(status="succeeded")
    return figures


def expired(delivery_id):
    """Claim again a delivery whose lease ran out (the one-by-one path)."""
    from workflow.models import Delivery
    from workflow.store import store

    ran_out = datetime.now(UTC) - timedelta(seconds=1)
    Delivery.objects.filter(pk=delivery_id).update(claimed_until=ran_out)
    return store.claim([delivery_id], "bench")


def child(rows, calls):
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    fill(0, SMALL)
    small = measure(SMALL, calls)
    started = time.monotonic()
    fill(SMALL, rows)
    filled = time.monotonic() - started
    return {"small": small, "large": measure(rows, calls), "filled": filled, "load": loadavg()}


def report(config, result, rows):
    print(
        f"{config:9} filled {rows:,} state entries and {rows:,} deliveries "
        f"in {result['filled']:.0f} s"
    )
    for name, small in result["small"].items():
        large = result["large"][name]
        print(
            f"{config:9} {name:20} {SMALL:,} rows {small:8.0f} us   "
            f"{rows:,} rows {large:8.0f} us   ratio {large / small:5.2f}x"
        )
    print(f"{config:9} [{result['load']}]")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--configs", default="sqlite,pg-orm")
    parser.add_argument("--quick", action="store_true", help="50,000 rows, SQLite only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.calls, args.configs = 50_000, 200, "sqlite"
    if args.child:
        print(json.dumps(child(args.rows, args.calls)))
        return
    print(machine())
    for config in available(args.configs.split(",")):
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-growth-{config}-"))
        with configuration(config, workdir) as env:
            argv = ["--child", "--rows", str(args.rows), "--calls", str(args.calls)]
            report(config, in_child(__file__, argv, {**BENCH_SETTINGS, **env}), args.rows)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    main()
