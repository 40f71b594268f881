"""The delivery store on PostgreSQL: the busiest writes as one statement each.

Every event is written once by ``emit`` and claimed once by a worker, and every API
call ends by storing its run, trace and log lines. Through the ORM each is a transaction
of several statements; here each is one statement with data-modifying ``WITH`` clauses,
its own transaction in autocommit (or part of the caller's). Same rows, same
compare-and-set, fewer round trips and less of the ORM's work per event: the hop with
Redis went from 9.5 to 5.5 ms (median) and the throughput from 0.67x to about 1x plain
django-q2's (BENCHMARKS.md). Everything else is the ORM store's.
"""

from django.db import DatabaseError, connection
from django.utils import timezone

from ..logs import python_logger
from ..models import Delivery, Event, PausedQueue, Run
from . import gates
from .claims import leases
from .orm import DeliveryStore
from .records import Claim

Status = Delivery.Status


class PostgresStore(DeliveryStore):
    vendor = "postgresql"

    def record_emit(self, event, trace, deliveries, idempotency_key=None):
        if idempotency_key is not None:  # a key already used: the ORM's savepoint dance
            return super().record_emit(event, trace, deliveries, idempotency_key)
        _insert_together(event, [trace] if trace is not None else [], deliveries, "event")
        return event, True

    def claim_pending(self, delivery_ids, token, now, worker):
        return claim_pending(delivery_ids, token, leases(now), now, worker)

    def mark_enqueued(self, delivery_ids):
        mark_enqueued(delivery_ids)

    def lock_step(self, step_name, group=None):
        """Claims of ``step_name`` (of its fifo ``group``) take turns until the transaction
        ends (an advisory lock: two workers never both take a guarded step's last place,
        nor two deliveries of a fifo group at once)."""
        key = f"workflow:{step_name}" + ("" if group is None else f":{group}")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])

    def record_api_run(self, run, trace, lines):
        """Outside a transaction, in one statement (the ORM's way if that fails)."""
        if connection.in_atomic_block:
            return super().record_api_run(run, trace, lines)
        try:
            _insert_together(run, [trace], lines, "run")
        except DatabaseError:
            python_logger.warning("Could not store the run of %s in one statement", run.step_name)
            return super().record_api_run(run, trace, lines)
        return True


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


def _columns(model, prefix=""):
    return [f"{prefix}{connection.ops.quote_name(f.column)}" for f in model._meta.concrete_fields]


def _attnames(model):
    return [f.attname for f in model._meta.concrete_fields]


def _converted(rows, models_and_extras):
    """``rows`` with each model column passed through Django's converters (JSON, ...)."""
    compiler = Delivery.objects.all().query.get_compiler(connection=connection)
    expressions = []
    for item in models_and_extras:
        if isinstance(item, type):
            expressions += [f.get_col(item._meta.db_table) for f in item._meta.concrete_fields]
        else:
            expressions.append(None)
    converters = compiler.get_converters(expressions)
    return list(compiler.apply_converters(rows, converters)) if converters else rows


def _instance(model, values):
    return model.from_db(connection.alias, _attnames(model), values)


def claim_pending(delivery_ids, token, deadlines, now, worker):
    """Claim those of ``delivery_ids`` pending, due, in no fifo group and of no guarded
    step (``gates``: flow control), and record a run for each; returns a ``Claim``
    for each, each delivery with its event.

    ``deadlines`` maps a step name to its ``claimed_until`` ("" for every other step).
    Rows are locked in id order, so two claims of the same deliveries (a second
    wake-up) wait for each other instead of deadlocking; the one that waited finds
    them running and leaves them.

    The commit does not wait for the disk. A claim the server loses in a crash (at
    most a fraction of a second of them) leaves its deliveries pending, as if never
    claimed: the attempt's completion, always synchronous, then finds its claim gone
    and discards the attempt, and the delivery runs again, as after any lost worker.
    """
    cases = [name for name in deadlines if name]
    deadline = "%s"
    params = []
    if cases:
        deadline = "CASE step_name " + "WHEN %s THEN %s " * len(cases) + "ELSE %s END"
        for name in cases:
            params += [name, deadlines[name]]
    params.append(deadlines[""])
    delivery_columns = _columns(Delivery, "taken.")
    sql = f"""
        WITH settings AS (SELECT set_config('synchronous_commit', 'off', true)),
        taken AS (
            UPDATE {_table(Delivery)}
            SET status = %s, attempts = attempts + 1, claim_token = %s,
                claimed_until = {deadline}, claimed_by = %s, enqueued_at = NULL
            WHERE id IN (
                SELECT id FROM {_table(Delivery)}
                WHERE id = ANY(%s) AND status = %s AND due_at <= %s AND message_group IS NULL
                  AND step_name NOT IN (SELECT step_name FROM {_table(PausedQueue)})
                  AND NOT (step_name = ANY(%s::varchar[]))
                ORDER BY id FOR UPDATE
            )
            RETURNING *
        ),
        runs AS (
            INSERT INTO {_table(Run)}
                (step_name, trace_id, delivery_id, attempt, status, started_at,
                 error, traceback, worker)
            SELECT step_name, trace_id, id, attempts, %s, %s, '', '', %s FROM taken
            RETURNING id, delivery_id
        )
        SELECT {", ".join(delivery_columns)}, runs.id, {", ".join(_columns(Event, "e."))}
        FROM taken
        JOIN runs ON runs.delivery_id = taken.id
        LEFT JOIN {_table(Event)} e ON e.id = taken.event_id
        CROSS JOIN settings
        ORDER BY taken.id
    """
    params = [Status.RUNNING, token, *params, worker, list(delivery_ids), Status.PENDING, now]
    params.append(sorted(gates.guarded_steps()))  # flow control: claimed one by one
    params += [Run.Status.RUNNING, now, worker]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = _converted(cursor.fetchall(), [Delivery, None, Event])
    split = len(delivery_columns)
    claimed = []
    for row in rows:
        delivery = _instance(Delivery, row[:split])
        if delivery.event_id is not None:
            delivery.event = _instance(Event, row[split + 1 :])
        run = Run.of_attempt(delivery, worker, now)
        _saved(run, row[split])
        claimed.append(Claim(delivery, run))
    return claimed


def _values(obj, replace=None):
    """``(placeholders, params)`` of ``obj``'s columns but its id, as bulk_create sends
    them; ``replace`` maps an attname to SQL written in its place."""
    placeholders, params = [], []
    for field in _fields(type(obj)):
        if replace and field.attname in replace:
            placeholders.append(replace[field.attname])
        else:
            placeholders.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(obj, True), connection))
    return f"({', '.join(placeholders)})", params


def _fields(model):
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _insert(model):
    names = ", ".join(connection.ops.quote_name(f.column) for f in _fields(model))
    return f"INSERT INTO {_table(model)} ({names})"


def _saved(obj, pk):
    obj.pk = pk
    obj._state.adding, obj._state.db = False, connection.alias


def _insert_together(parent, others, children, link):
    """Insert ``parent``, ``others`` (rows that do not refer to it) and ``children``
    (whose foreign key ``link`` is the parent's new id) in one statement; sets the ids
    of the parent and the children, and each child's ``link`` to the parent."""
    values, params = _values(parent)
    sql = f"WITH parent AS ({_insert(type(parent))} VALUES {values} RETURNING id)"
    for n, other in enumerate(others):
        values, other_params = _values(other)
        sql += f", other{n} AS ({_insert(type(other))} VALUES {values})"
        params += other_params
    if children:
        rows = []
        for child in children:
            values, child_params = _values(child, {f"{link}_id": "(SELECT id FROM parent)"})
            rows.append(values)
            params += child_params
        insert = _insert(type(children[0]))
        sql += f", children AS ({insert} VALUES {', '.join(rows)} RETURNING id)"
        sql += " SELECT (SELECT id FROM parent), ARRAY(SELECT id FROM children ORDER BY id)"
    else:
        sql += " SELECT (SELECT id FROM parent), ARRAY[]::bigint[]"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        parent_id, child_ids = cursor.fetchone()
    _saved(parent, parent_id)
    for child, pk in zip(children, child_ids, strict=True):
        _saved(child, pk)
        setattr(child, link, parent)


def mark_enqueued(delivery_ids):
    """``DeliveryStore.mark_enqueued`` in one statement that skips rows locked by a claim
    or another mark (a claim clears the mark anyway), so the mark never waits on a
    claim, nor two of them on each other in turn; and, a hint whose loss in a crash
    costs at most a second wake-up, it does not wait for the disk."""
    table = _table(Delivery)
    sql = f"""
        WITH settings AS (SELECT set_config('synchronous_commit', 'off', true))
        UPDATE {table} SET enqueued_at = %s FROM settings
        WHERE id IN (
            SELECT id FROM {table}
            WHERE id = ANY(%s) AND status = %s AND attempts = 0 AND enqueued_at IS NULL
            FOR UPDATE SKIP LOCKED
        )
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), list(delivery_ids), Status.PENDING])
