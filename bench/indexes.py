"""The runtime's queries on the delivery table at millions of rows, on PostgreSQL.

    python bench/indexes.py                  # --finished 1500000 --pending 2000

Makes a scratch database, migrates it, fills ``workflow_delivery`` with finished rows
(succeeded, some dead, a tenth of them in fifo groups, and one fifo group with a fifth
as many of its own, then one pending) and a few pending and running
ones, then prints ``EXPLAIN ANALYZE`` of each query the runtime repeats: the claim,
the sweeper's (every tick, in every cluster), the fifo checks, the supervisor's, and
the queue depth a monitor reads. The database is dropped afterwards (--keep keeps it).
"""

import argparse
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"

FILL = """
INSERT INTO workflow_delivery (step_name, trace_id, status, attempts, due_at, created_at,
                               finished_at, message_group, last_error)
SELECT CASE WHEN n % 3 = 0 THEN 'SendWelcomeEmail' WHEN n % 3 = 1 THEN 'SetupUserAccount'
            ELSE 'LogNotification' END,
       md5(n::text), CASE WHEN n % 1000 = 0 THEN 'dead' ELSE 'succeeded' END, 1,
       now() - interval '30 days' + n * interval '1 second',
       now() - interval '30 days' + n * interval '1 second',
       now() - interval '30 days' + n * interval '1 second' + interval '1 second',
       CASE WHEN n % 10 = 0 THEN 'order-' || (n % 5000) END, ''
FROM generate_series(1, {finished:d}) AS n;
INSERT INTO workflow_delivery (step_name, trace_id, status, attempts, due_at, created_at,
                               message_group, last_error, enqueued_at, claimed_until,
                               claim_token)
SELECT CASE WHEN n % 2 = 0 THEN 'SendWelcomeEmail' ELSE 'SetupUserAccount' END,
       md5(n::text), CASE WHEN n % 10 = 0 THEN 'running' ELSE 'pending' END,
       CASE WHEN n % 10 = 0 THEN 1 ELSE 0 END,
       now() + (n % 600 - 300) * interval '1 second', now(),
       CASE WHEN n % 10 = 1 THEN 'order-' || (n % 5000) END, '',
       CASE WHEN n % 4 = 0 THEN now() END,
       CASE WHEN n % 10 = 0 THEN now() + interval '60 seconds' END,
       CASE WHEN n % 10 = 0 THEN gen_random_uuid() END
FROM generate_series(1, {pending:d}) AS n;
INSERT INTO workflow_delivery (step_name, trace_id, status, attempts, due_at, created_at,
                               finished_at, message_group, last_error)
SELECT 'SetupUserAccount', md5(n::text), 'succeeded', 1, now(), now(), now(), 'hot', ''
FROM generate_series(1, {finished:d} / 5) AS n;
INSERT INTO workflow_delivery (step_name, trace_id, status, attempts, due_at, created_at,
                               message_group, last_error)
VALUES ('SetupUserAccount', 'hot', 'pending', 0, now(), now(), 'hot', '');
ANALYZE workflow_delivery;
"""

# Each query as the runtime builds it, through the ORM, run in a Django shell.
EXPLAIN = r"""
from datetime import timedelta
from django.db import connection, transaction
from django.db.models import Exists, Q
from django.utils import timezone
from django.db.models import OuterRef
from workflow.models import Delivery
from workflow.store.claims import claimable

now = timezone.now()
pending = Delivery.objects.filter(status="pending").order_by("-id").first()
hot = Delivery.objects.get(trace_id="hot")
stale = now - timedelta(seconds=10)
unwoken = claimable(now) & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale))
ahead = Delivery.objects.filter(
    step_name=OuterRef("step_name"), message_group=OuterRef("message_group"),
    pk__lt=OuterRef("pk"), status__in=["pending", "running"],
)
unblocked = Q(message_group__isnull=True) | ~Exists(ahead)
due = Delivery.objects.filter(unwoken).filter(unblocked)
earlier = Delivery.objects.filter(
    step_name=hot.step_name, message_group=hot.message_group, pk__lt=hot.pk,
    status__in=["pending", "running"],
)
following = Delivery.objects.filter(
    step_name=hot.step_name, message_group=hot.message_group, pk__gt=hot.pk - 10,
    status="pending",
).order_by("pk").values_list("pk", "due_at")[:1]


def exists(qs):
    return qs.query.exists().get_compiler(qs.db).as_sql()


def sql(qs):
    return qs.query.get_compiler(qs.db).as_sql()


transaction.atomic().__enter__()  # FOR UPDATE needs a transaction, even to compile
queries = {
    "claim one (store.claim)": sql(
        Delivery.objects.select_related("event")
        .filter(claimable(now), pk=pending.pk)[:1]
    ),
    "sweep: anything due? (store.take_due)": exists(due),
    "sweep: the batch (store.take_due)": sql(
        due.select_for_update(skip_locked=True)
        .order_by("due_at")
        .values_list("pk", flat=True)[:500]
    ),
    "fifo: an earlier one pending or running? (store.waits_its_turn)": exists(earlier),
    "fifo: the next of the group (store record's next in group)": sql(following),
    "supervisor: wake-ups to clear (store.unmark_all)": sql(
        Delivery.objects.filter(status="pending", enqueued_at__isnull=False).order_by()
    ),
    "monitor: queue depth, due now": exists(
        Delivery.objects.filter(status="pending", due_at__lte=now)
    ),
}
for name, (query, params) in queries.items():
    print("### " + name)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params)
        print("\n".join(row[0] for row in cursor.fetchall()))
"""


def psql(url, sql, params=None):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql, params)


def manage(url, *args):
    """``manage.py ARGS`` on the database at ``url``; its standard output."""
    env = {**os.environ, "DATABASE_URL": url, "DATABASE_POOL_SIZE": "0"}
    argv = [sys.executable, str(ROOT / "manage.py"), *args]
    return subprocess.run(
        argv, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
    ).stdout


def fill(url, finished, pending):
    """Migrate the database at ``url`` and fill its delivery table; the rows by status."""
    manage(url, "migrate", "-v0")
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in FILL.split(";\n"):
            if statement.strip():
                conn.execute(statement.format(finished=finished, pending=pending))
        rows = conn.execute("SELECT status, COUNT(*) FROM workflow_delivery GROUP BY 1")
        return dict(rows.fetchall())


def plans(url):
    """``{query name: EXPLAIN ANALYZE output}`` for the runtime's queries."""
    out = manage(url, "shell", "-c", EXPLAIN)
    return dict(block.partition("\n")[::2] for block in out.split("### ")[1:])


def scans(plan):
    """``[(scan kind, index or table)]`` of a plan, outermost first."""
    return re.findall(
        r"(Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan)"
        r"(?: Backward)?(?: using| on) (\w+)",
        plan,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finished", type=int, default=1_500_000)
    parser.add_argument("--pending", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    name = f"workflow_indexes_{uuid.uuid4().hex[:8]}"
    url = f"{PG}/{name}"
    psql(f"{PG}/postgres", f"CREATE DATABASE {name}")
    try:
        print("rows:", fill(url, args.finished, args.pending))
        with psycopg.connect(url) as conn:
            indexes = conn.execute(
                "SELECT indexname, pg_size_pretty(pg_relation_size(indexname::regclass)) "
                "FROM pg_indexes WHERE tablename = 'workflow_delivery' ORDER BY 1"
            ).fetchall()
        print("indexes:", ", ".join(f"{i} ({size})" for i, size in indexes))
        found = plans(url)
        for title, plan in found.items():
            print(f"### {title}\n{plan}")
        print("summary (scans, execution time):")
        for title, plan in found.items():
            time_ms = re.search(r"Execution Time: ([\d.]+) ms", plan)
            shown = ", ".join(f"{kind} {index}" for kind, index in scans(plan))
            print(f"  {title}: {shown} — {time_ms.group(1) if time_ms else '?'} ms")
    finally:
        if not args.keep:
            psql(f"{PG}/postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        else:
            print("kept", url)


if __name__ == "__main__":
    main()
