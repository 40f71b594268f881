"""Server time of the workbench pages with a small and a large history.

    python bench/workbench_pages.py [--lines 1000000] [--traces 100000] [--quick]

Fills a SQLite database of its own (or DATABASE_URL's, which must be a scratch
database) with step log lines and traces (each trace: an API run, an event, two
deliveries and their runs), then times each page through Django's test client, in
process: the server's time, without a network or a browser. The baseline is the same
pages on 1,000 log lines and 100 traces, measured in the same run.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEPS = ["RegisterUser", "SendWelcomeEmail", "SetupUserAccount", "LogNotification"]
LEVELS = ["info"] * 18 + ["warn", "error"]
CHUNK = 20_000


def setup(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def rows(count, make):
    batch = []
    for n in range(count):
        batch.append(make(n))
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(traces, lines):
    """``traces`` traces and ``lines`` log lines spread over them, inserted in bulk."""
    from django.db import connection, transaction

    start = datetime(2026, 11, 1, tzinfo=UTC)

    def at(n, seconds=0.0):
        return (start + timedelta(seconds=n * 0.5 + seconds)).isoformat()

    def trace(n):
        return f"{n:032x}"

    with transaction.atomic(), connection.cursor() as cursor:
        for batch in rows(traces, lambda n: (trace(n), "RegisterUser", at(n))):
            cursor.executemany(
                "INSERT INTO workflow_trace (trace_id, entry_step, started_at) VALUES (%s, %s, %s)",
                batch,
            )
        for batch in rows(
            traces,
            lambda n: (
                "user.registered",
                f'{{"userId": "user-{n}", "email": "user{n}@example.com"}}',
                trace(n),
                "RegisterUser",
                at(n),
            ),
        ):
            cursor.executemany(
                "INSERT INTO workflow_event (topic, data, trace_id, emitted_by, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                batch,
            )
        for step in STEPS[1:3]:
            cursor.execute(
                "INSERT INTO workflow_delivery (event_id, step_name, trace_id, status, attempts, "
                "due_at, created_at, last_error) "
                "SELECT id, %s, trace_id, 'succeeded', 1, created_at, created_at, '' "
                "FROM workflow_event",
                [step],
            )
        for step, offset in zip(STEPS, [0, 0.1, 0.1, 1.2], strict=True):
            for batch in rows(
                traces,
                lambda n, step=step, offset=offset: (
                    step,
                    trace(n),
                    at(n, offset),
                    at(n, offset + 0.05),
                ),
            ):
                cursor.executemany(
                    "INSERT INTO workflow_run (step_name, trace_id, attempt, status, started_at, "
                    "finished_at, error, traceback, worker) "
                    "VALUES (%s, %s, 1, 'succeeded', %s, %s, '', '', '')",
                    batch,
                )
        per_trace = max(1, lines // max(traces, 1))
        for batch in rows(
            lines,
            lambda n: (
                at(n // per_trace),
                LEVELS[n % len(LEVELS)],
                f"Line {n} of the welcome flow",
                STEPS[n % len(STEPS)],
                trace(min(n // per_trace, traces - 1)),
                f'{{"n": {n}}}',
            ),
        ):
            cursor.executemany(
                "INSERT INTO workflow_logentry (created_at, level, message, step_name, "
                "trace_id, fields) VALUES (%s, %s, %s, %s, %s, %s)",
                batch,
            )


def pages(traces):
    middle = f"{traces // 2:032x}"
    return {
        "flows": "/admin/workbench/flows/",
        "logs": "/admin/workbench/logs/",
        "logs ?step=": "/admin/workbench/logs/?step=SendWelcomeEmail",
        "logs ?level=error": "/admin/workbench/logs/?level=error",
        "logs ?trace=": f"/admin/workbench/logs/?trace={middle}",
        "traces": "/admin/workbench/traces/",
        "traces ?q=<trace id>": f"/admin/workbench/traces/?q={middle}",
        "traces ?q=<email>": f"/admin/workbench/traces/?q=user{traces // 2}@example.com",
        "trace page": f"/admin/workbench/traces/{middle}/",
        "endpoints": "/admin/workbench/endpoints/",
    }


def timed(client, url, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times) * 1000


def measure(traces, repeat):
    from django.contrib.auth.models import User
    from django.test import Client

    admin = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.com", "x" * 12
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    return {name: timed(client, url, repeat) for name, url in pages(traces).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 lines, 2,000 traces")
    args = parser.parse_args()
    if args.quick:
        args.lines, args.traces, args.repeat = 20_000, 2_000, 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-workbench-"))
    setup(os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'db.sqlite3'}")
    from django.db import connection

    fill(100, 1_000)
    baseline = measure(100, args.repeat)
    started = time.monotonic()
    with connection.cursor() as cursor:
        for table in ("logentry", "run", "delivery", "event", "trace"):
            cursor.execute(f"DELETE FROM workflow_{table}")
    fill(args.traces, args.lines)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"filled {args.lines:,} log lines and {args.traces:,} traces in "
        f"{time.monotonic() - started:.0f} s ({connection.vendor})"
    )
    large = measure(args.traces, args.repeat)
    print(f"\n{'page':24} {'1,000 lines':>12} {f'{args.lines:,} lines':>16} {'ratio':>7}")
    for name, ms in large.items():
        print(f"{name:24} {baseline[name]:>9.1f} ms {ms:>13.1f} ms {ms / baseline[name]:>6.2f}x")


if __name__ == "__main__":
    main()
