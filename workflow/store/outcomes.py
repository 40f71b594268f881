"""Recording outcomes: success, a retry after the backoff, or dead, in batches.

Each outcome is recorded only if its attempt still holds the delivery (a
compare-and-set on the claim token): an attempt whose delivery was handed back, taken
over after its lease ran out, or cancelled writes nothing. A success applies the
attempt's held writes in the same transaction, so an attempt is all or nothing.
"""

import traceback
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ..models import Delivery, Run
from ..policy import QueuePolicy
from ..registry import registry
from . import gates
from .claims import ended, owned
from .records import Outcome, Recorded

Status = Delivery.Status


class _Lost(Exception):
    """A delivery of a batch no longer held: the batch is undone and redone one by one."""


class OutcomesMixin:
    def record(self, outcomes):
        """Record ``outcomes`` in one transaction, each all or nothing; returns a
        ``Recorded`` for each, in order, and the ids of deliveries to wake once the
        transaction committed (the next of each fifo group an outcome finished, and
        of each concurrency limit it freed a place in).

        Successes that hold no writes are recorded together (two UPDATEs); the others
        each in a savepoint of their own. If the transaction itself fails, this raises
        and none is recorded.
        """
        results = [None] * len(outcomes)
        wake = []
        with transaction.atomic():
            bare = [n for n, o in enumerate(outcomes) if _bare(o)]
            if bare and self._succeed_together([outcomes[n] for n in bare]):
                for n in bare:
                    results[n] = Recorded(outcomes[n], Status.SUCCEEDED)
            for n, outcome in enumerate(outcomes):
                if results[n] is None:
                    results[n] = self._record_one(outcome)
                    if results[n].status in (Status.SUCCEEDED, Status.DEAD):
                        wake += self._next_in_group(outcome.claim.delivery)
                if results[n].status is not None:  # a place of a limited step is free
                    wake += gates.next_up(outcome.claim.delivery, timezone.now())
        return results, list(dict.fromkeys(wake))

    def _succeed_together(self, outcomes):
        """Succeed bare attempts in two UPDATEs; False, with nothing changed, if any of
        them no longer holds its delivery (then each is recorded on its own)."""
        now = timezone.now()
        try:
            with transaction.atomic():
                done = owned([o.claim for o in outcomes]).update(**ended(Status.SUCCEEDED, now))
                if done != len(outcomes):
                    raise _Lost()
                runs = [o.claim.run for o in outcomes]
                Run.objects.filter(pk__in=[run.pk for run in runs]).update(
                    status=Run.Status.SUCCEEDED, finished_at=now
                )
        except _Lost:
            return False
        for run in runs:
            run.status, run.finished_at = Run.Status.SUCCEEDED, now
        return True

    def _record_one(self, outcome):
        if outcome.succeeded:
            try:
                with transaction.atomic():  # a savepoint: its failure undoes this one alone
                    status = self._succeed(outcome)
            except Exception as exc:  # its held writes failed: the attempt failed
                error = f"{type(exc).__name__}: {exc}"
                outcome = Outcome.failure(outcome.claim, error, traceback.format_exc())
            else:
                return Recorded(outcome, status, "" if status else _why_lost(outcome.claim))
        with transaction.atomic():
            status = self._fail(outcome)
        return Recorded(outcome, status, "" if status else _why_lost(outcome.claim))

    def _succeed(self, outcome):
        now = timezone.now()
        claim = outcome.claim
        done = owned([claim]).update(**ended(Status.SUCCEEDED, now))
        if not done:
            return None
        if outcome.write is not None:
            outcome.write()
        Run.objects.filter(pk=claim.run.pk).update(status=Run.Status.SUCCEEDED, finished_at=now)
        claim.run.status, claim.run.finished_at = Run.Status.SUCCEEDED, now
        return Status.SUCCEEDED

    def _fail(self, outcome):
        """A failed attempt: pending again, due after the backoff, or dead after the last
        attempt allowed (at once for a final error). None if it no longer held it."""
        now = timezone.now()
        claim = outcome.claim
        policy = QueuePolicy.for_step(registry.get(claim.step_name))
        if not outcome.final and claim.delivery.attempts <= policy.max_retries:
            due = now + timedelta(seconds=policy.retry_delay(claim.delivery.attempts))
            changes = {"status": Status.PENDING, "due_at": due, "enqueued_at": None}
        else:
            changes = {"status": Status.DEAD, "finished_at": now}
        held = owned([claim]).update(
            **changes, claim_token=None, claimed_until=None, last_error=outcome.error
        )
        if not held:
            return None
        Run.objects.filter(pk=claim.run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.FAILED,
            finished_at=now,
            error=outcome.error,
            traceback=outcome.traceback,
        )
        run = claim.run
        run.status, run.finished_at, run.error = Run.Status.FAILED, now, outcome.error
        return changes["status"]

    @staticmethod
    def _next_in_group(delivery):
        """Once a fifo delivery is done (succeeded or dead): the next of its group, if due."""
        if delivery.message_group is None:
            return []
        following = (
            Delivery.objects.filter(
                step_name=delivery.step_name,
                message_group=delivery.message_group,
                status=Status.PENDING,
            )
            .exclude(pk=delivery.pk)
            .order_by("pk")[:1]
        )  # the earliest waiting: one committed after a later one may be behind it
        # One not due yet (a delayed emit) is the sweeper's to wake when due.
        now = timezone.now()
        return [pk for pk, due_at in following.values_list("pk", "due_at") if due_at <= now]


def _bare(outcome):
    """A success that holds no writes, outside any fifo group."""
    return (
        outcome.succeeded and outcome.write is None and outcome.claim.delivery.message_group is None
    )


def _why_lost(claim):
    """Why an attempt no longer holds its delivery, read from the row as it is now."""
    row = Delivery.objects.filter(pk=claim.pk).values("status", "claim_token").first()
    if row is None:
        return "its delivery was deleted"
    if row["status"] == Status.CANCELLED:
        return "its trace was cancelled"
    if row["status"] == Status.RUNNING:
        return "its lease ran out and another attempt took the delivery"
    if row["status"] == Status.PENDING:
        return "its delivery was handed back"
    return f"its delivery was already {row['status']}"
