"""Claims and completions in batches: the same compare-and-sets as ``deliveries``, fewer
statements and transactions when a worker has several deliveries at once.

A worker's wake-up jobs arrive one by one; its claimer takes every delivery woken
since its last claim in one go, and its completer records every attempt finished
since its last commit in one transaction (see ``executor``). Under load that turns a
transaction per delivery into one per batch; on SQLite, where writers take turns on
one lock, it also means a couple of writers per worker instead of one per handler
thread. The guarantees are those of ``deliveries``: a claim is a compare-and-set on
(pk, claim token), so a delivery is never held twice, and each attempt is recorded all
or nothing.
"""

import uuid
from datetime import timedelta
from functools import reduce
from operator import or_

from django.db import connection, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from . import postgres
from .deliveries import ClaimLost, claim, claimable, complete
from .models import Delivery, Run
from .policy import QueuePolicy
from .registry import registry

Status = Delivery.Status


def claim_many(delivery_ids, worker=""):
    """Take each of ``delivery_ids`` that can be taken now; returns ``[(delivery, run)]``.

    Due pending deliveries outside any fifo group, nearly all a worker is woken for, are
    claimed together: one compare-and-set UPDATE, one read of what it took (with the
    events) and one INSERT of their runs, in one transaction (on PostgreSQL, in one
    statement: ``postgres.claim_pending``). Any others still
    claimable (presumed-dead runs, fifo deliveries) go through ``claim()`` one by one.
    """
    now = timezone.now()
    claimed = _claim_pending(delivery_ids, worker, now)
    taken = {delivery.pk for delivery, _ in claimed}
    rest = [pk for pk in delivery_ids if pk not in taken]
    if rest:
        others = Delivery.objects.filter(claimable(now), pk__in=rest).values_list("pk", flat=True)
        claimed += [pair for pk in others if (pair := claim(pk, worker)) is not None]
    return claimed


def _claim_pending(delivery_ids, worker, now):
    """Claim those of ``delivery_ids`` that are pending, due and in no fifo group."""
    token = uuid.uuid4()  # one per batch: a claim is still told apart by (pk, token)
    if connection.vendor == "postgresql":  # the same in one statement
        return postgres.claim_pending(delivery_ids, token, deadlines(now), now, worker)
    with transaction.atomic():
        # Compare-and-set: only rows still pending and due (a pending row has no token).
        taken = Delivery.objects.filter(
            pk__in=delivery_ids, status=Status.PENDING, due_at__lte=now, message_group=None
        ).update(
            status=Status.RUNNING,
            attempts=F("attempts") + 1,
            claim_token=token,
            claimed_until=visibility_deadline(now),
            enqueued_at=None,
        )
        if not taken:
            return []
        held = list(
            Delivery.objects.select_related("event").filter(pk__in=delivery_ids, claim_token=token)
        )
        runs = Run.objects.bulk_create([Run.of_attempt(d, worker, now) for d in held])
    return list(zip(held, runs, strict=True))


def deadlines(now):
    """Each step's ``claimed_until`` if claimed now, by step name ("": every other step)."""
    default = QueuePolicy.for_step(None).visibility_timeout
    found = {"": now + timedelta(seconds=default)}
    for step in registry:
        timeout = QueuePolicy.for_step(step).visibility_timeout
        if timeout != default:
            found[step.name] = now + timedelta(seconds=timeout)
    return found


def visibility_deadline(now):
    """Each claimed delivery's ``claimed_until``: now plus its step's visibility timeout
    (a CASE over the steps whose timeout is not the default)."""
    found = deadlines(now)
    cases = [When(step_name=name, then=Value(at)) for name, at in found.items() if name]
    if not cases:
        return found[""]
    return Case(*cases, default=Value(found[""]), output_field=DateTimeField())


def complete_many(attempts):
    """Record the success of several attempts in one transaction, each all or nothing.

    ``attempts`` are ``(delivery, run, write)``, ``write`` None for an attempt that holds
    no writes. Returns one entry per attempt: None if recorded, else the exception
    (``ClaimLost``, or what its ``write()`` raised), which undid that attempt alone. If
    the transaction itself fails, this raises and none is recorded.
    """
    errors = [None] * len(attempts)
    with transaction.atomic():
        bare = [n for n, (d, _, w) in enumerate(attempts) if w is None and not d.message_group]
        done = set(bare) if bare and _complete_bare([attempts[n] for n in bare]) else set()
        for n, (delivery, run, write) in enumerate(attempts):
            if n in done:
                continue
            try:
                complete(delivery, run, write or _nothing)  # in a savepoint of its own
            except Exception as exc:
                errors[n] = exc
    return errors


def _nothing():
    pass


def _complete_bare(attempts):
    """Succeed attempts that hold no writes in two UPDATEs; False, with nothing changed,
    if any of them no longer holds its delivery (then each is completed on its own)."""
    now = timezone.now()
    by_token = {}  # the deliveries of one claim share its token
    for delivery, _, _ in attempts:
        by_token.setdefault(delivery.claim_token, []).append(delivery.pk)
    owned = reduce(or_, (Q(claim_token=token, pk__in=pks) for token, pks in by_token.items()))
    try:
        with transaction.atomic():
            done = Delivery.objects.filter(owned, status=Status.RUNNING).update(
                status=Status.SUCCEEDED,
                finished_at=now,
                claim_token=None,
                claimed_until=None,
                last_error="",
            )
            if done != len(attempts):
                raise ClaimLost("a delivery of the batch was taken over")
            Run.objects.filter(pk__in=[run.pk for _, run, _ in attempts]).update(
                status=Run.Status.SUCCEEDED, finished_at=now
            )
    except ClaimLost:
        return False
    return True
