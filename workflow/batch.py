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

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .deliveries import ClaimLost, claim, claimable, complete
from .models import Delivery, Run
from .policy import QueuePolicy
from .registry import registry

Status = Delivery.Status


def claim_many(delivery_ids, worker=""):
    """Take each of ``delivery_ids`` that can be taken now; returns ``[(delivery, run)]``.

    Due pending deliveries outside any fifo group are claimed together: one UPDATE per
    step (its visibility timeout) and one INSERT of their runs, in one transaction.
    Presumed-dead runs and fifo deliveries go through ``claim()`` one by one.
    """
    now = timezone.now()
    found = Delivery.objects.select_related("event").filter(claimable(now), pk__in=delivery_ids)
    plain, others = [], []
    for delivery in found:
        fresh = delivery.status == Status.PENDING and delivery.message_group is None
        (plain if fresh else others).append(delivery)
    claimed = [pair for d in others if (pair := claim(d.pk, worker)) is not None]
    return claimed + _claim_pending(plain, worker, now) if plain else claimed


def _claim_pending(found, worker, now):
    """Claim due pending deliveries read at ``now``; any another worker took is skipped."""
    token = uuid.uuid4()  # one per batch: a claim is still told apart by (pk, token)
    by_step = {}
    for delivery in found:
        by_step.setdefault(delivery.step_name, []).append(delivery)
    with transaction.atomic():
        for step_name, group in by_step.items():
            policy = QueuePolicy.for_step(registry.get(step_name))
            # Compare-and-set: only rows still pending and due (a pending row has no token).
            Delivery.objects.filter(
                pk__in=[d.pk for d in group], status=Status.PENDING, due_at__lte=now
            ).update(
                status=Status.RUNNING,
                attempts=F("attempts") + 1,
                claim_token=token,
                claimed_until=now + timedelta(seconds=policy.visibility_timeout),
                enqueued_at=None,
            )
        won = dict(
            Delivery.objects.filter(pk__in=[d.pk for d in found], claim_token=token).values_list(
                "pk", "claimed_until"
            )
        )
        held = [d for d in found if d.pk in won]
        for delivery in held:
            delivery.status, delivery.attempts = Status.RUNNING, delivery.attempts + 1
            delivery.claim_token, delivery.claimed_until = token, won[delivery.pk]
            delivery.enqueued_at = None
        runs = Run.objects.bulk_create([_run(d, worker, now) for d in held])
    return list(zip(held, runs, strict=True))


def _run(delivery, worker, now):
    return Run(
        step_name=delivery.step_name,
        trace_id=delivery.trace_id,
        delivery=delivery,
        attempt=delivery.attempts,
        started_at=now,
        worker=worker,
    )


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
    owned = reduce(or_, (Q(pk=d.pk, claim_token=d.claim_token) for d, _, _ in attempts))
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
