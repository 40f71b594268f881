"""run_delivery: claim, validate, call the handler, record the outcome, all or nothing
(the workers' path, in a batch of one).

Some tests race threads on their own database connections, so these tests use
``transaction=True``.
"""

import asyncio
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from workflow import NonRetryable, bus, runner
from workflow.context import Context
from workflow.models import Delivery, Event, LogEntry, Run, StateEntry
from workflow.runner import run_delivery
from workflow.state import StateStore
from workflow.steps import CronStep, EventStep
from workflow.store import Outcome, store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.store]
Status = Delivery.Status


class Recorder:
    """A handler that records its calls, then runs ``body(input, ctx)``."""

    def __init__(self, body=None):
        self.calls = []
        self.body = body

    def __call__(self, input, ctx):
        self.calls.append(input)
        if self.body:
            self.body(input, ctx)


def add_step(steps, body=None, **config):
    handler = Recorder(body)
    config = {"name": "Worker", "subscribes": ["job"], "emits": ["job.done"], **config}
    steps.add(EventStep(**config), handler)
    return handler


def emit_one(data=None, **options):
    """Emit on 'job' and return the id of its single delivery."""
    event = bus.emit("job", {"n": 1} if data is None else data, **options)
    return Delivery.objects.get(event=event).pk


def write_and_emit(input, ctx):
    ctx.state.set("results", "n", input["n"])
    assert StateStore().get("results", "n") is None  # held, not written yet
    ctx.emit("job.done", {"n": input["n"] + 1})
    ctx.logger.info("worked", n=input["n"])


def test_success_marks_delivery_and_run_succeeded_and_writes_held_work(steps):
    """A handler that returns: delivery and its one Run succeed, held state and emits land."""
    handler = add_step(steps, write_and_emit)
    delivery_id = emit_one()
    assert run_delivery(delivery_id, "w1") == Run.Status.SUCCEEDED
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == Status.SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.finished_at is not None
    assert delivery.claim_token is None
    (run,) = Run.objects.filter(delivery=delivery)
    assert (run.status, run.attempt, run.worker) == (Run.Status.SUCCEEDED, 1, "w1")
    assert handler.calls == [{"n": 1}]
    assert StateStore().get("results", "n") == 1
    done = Event.objects.get(topic="job.done")
    assert (done.data, done.trace_id, done.emitted_by) == ({"n": 2}, delivery.trace_id, "Worker")
    assert LogEntry.objects.get(message="worked").run_id == run.pk


def test_an_attempt_that_lost_its_claim_writes_nothing(steps):
    """A handler whose delivery was taken over meanwhile: its state writes and emits are dropped."""

    def taken_over(input, ctx):
        write_and_emit(input, ctx)
        Delivery.objects.filter(trace_id=ctx.trace_id).update(claim_token=uuid.uuid4())

    add_step(steps, taken_over)
    delivery_id = emit_one()
    assert run_delivery(delivery_id) == Run.Status.INTERRUPTED
    assert not StateEntry.objects.exists()
    assert not Event.objects.filter(topic="job.done").exists()
    assert Delivery.objects.get(pk=delivery_id).status == Status.RUNNING
    discarded = LogEntry.objects.get(message="Attempt discarded", level="warn")
    assert discarded.fields["reason"] == "its lease ran out and another attempt took the delivery"


def test_lines_a_handler_logs_in_its_own_transaction_are_stored(steps):
    """Lines held while the handler's own transaction was open are stored when the attempt ends."""

    def logs_in_transaction(input, ctx):
        with transaction.atomic():
            ctx.logger.info("in a transaction")

    add_step(steps, logs_in_transaction)
    assert run_delivery(emit_one()) == Run.Status.SUCCEEDED
    entry = LogEntry.objects.get(message="in a transaction")
    assert entry.run_id == Run.objects.get().pk


def test_a_succeeded_delivery_is_not_run_again(steps):
    """run_delivery of a succeeded delivery returns None and does not call the handler."""
    handler = add_step(steps)
    delivery_id = emit_one()
    assert run_delivery(delivery_id) == Run.Status.SUCCEEDED
    assert run_delivery(delivery_id) is None
    assert len(handler.calls) == 1
    assert Run.objects.count() == 1


def test_failure_drops_held_writes_keeps_logs_and_schedules_a_retry(steps):
    """A raising handler writes no state or emits, keeps its logs, and is retried after backoff."""

    def fail_after_writing(input, ctx):
        write_and_emit(input, ctx)
        raise ValueError("boom")

    add_step(
        steps,
        fail_after_writing,
        infrastructure={"queue": {"backoff": {"initial": 30, "jitter": False}}},
    )
    delivery_id = emit_one()
    before = timezone.now()
    assert run_delivery(delivery_id) == Run.Status.FAILED
    after = timezone.now()
    assert not StateEntry.objects.exists()
    assert not Event.objects.filter(topic="job.done").exists()
    assert LogEntry.objects.filter(message="worked").exists()
    assert LogEntry.objects.filter(message="Handler failed", level="error").exists()
    (run,) = Run.objects.all()
    assert run.status == Run.Status.FAILED
    assert run.error == "ValueError: boom"
    assert "fail_after_writing" in run.traceback
    assert 'raise ValueError("boom")' in run.traceback
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == Status.PENDING
    assert delivery.attempts == 1
    assert delivery.enqueued_at is None
    assert delivery.claim_token is None
    assert delivery.last_error == "ValueError: boom"
    assert before + timedelta(seconds=30) <= delivery.due_at <= after + timedelta(seconds=30)
    assert run_delivery(delivery_id) is None  # not due yet


def test_delivery_is_dead_after_its_last_retry(steps):
    """After 1 + max_retries failed attempts the delivery is dead and not run again."""

    def always_fail(input, ctx):
        raise RuntimeError("still broken")

    handler = add_step(
        steps,
        always_fail,
        infrastructure={"queue": {"max_retries": 1, "backoff": {"initial": 0, "jitter": False}}},
    )
    delivery_id = emit_one()
    assert run_delivery(delivery_id) == Run.Status.FAILED
    assert Delivery.objects.get(pk=delivery_id).status == Status.PENDING
    Delivery.objects.filter(pk=delivery_id).update(due_at=timezone.now())
    assert run_delivery(delivery_id) == Run.Status.FAILED
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == Status.DEAD
    assert delivery.attempts == 2
    assert delivery.finished_at is not None
    assert delivery.last_error == "RuntimeError: still broken"
    assert list(Run.objects.order_by("id").values_list("attempt", "status")) == [
        (1, Run.Status.FAILED),
        (2, Run.Status.FAILED),
    ]
    assert run_delivery(delivery_id) is None
    assert len(handler.calls) == 2


class NumberInput(serializers.Serializer):
    n = serializers.IntegerField()


def test_input_is_validated_and_converted_by_the_serializer(steps):
    """The handler receives the serializer's validated data."""
    handler = add_step(steps, input=NumberInput)
    assert run_delivery(emit_one({"n": 5})) == Run.Status.SUCCEEDED
    assert handler.calls == [{"n": 5}]


class Flags(serializers.Serializer):
    n = serializers.IntegerField()
    on = serializers.BooleanField()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"n": "3", "on": True}, '"n": ["A valid integer is required."]'),
        ({"n": 3, "on": "yes"}, '"on": ["Must be a valid boolean."]'),
    ],
)
def test_input_of_another_json_type_is_dead_at_once(steps, data, message):
    """Event data whose JSON types are not its input's ("3" for an integer, "yes" for a
    boolean) fails the delivery with the field's message, not retried; the handler
    never runs."""
    handler = add_step(steps, input=Flags)
    delivery_id = emit_one(data, check=False)  # the emit's own check would refuse it
    assert run_delivery(delivery_id) == Run.Status.FAILED
    assert handler.calls == []
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (Status.DEAD, 1)
    assert "Worker input did not match its input schema" in delivery.last_error
    assert message in delivery.last_error


def test_invalid_input_is_dead_at_once_without_calling_the_handler(steps):
    """Input that fails the serializer makes the delivery dead at once; the handler never
    runs (data emitted unchecked, as ``manage.py emit --no-check`` does)."""
    handler = add_step(steps, input=NumberInput)
    delivery_id = emit_one({"n": "not a number"}, check=False)
    assert run_delivery(delivery_id) == Run.Status.FAILED
    assert handler.calls == []
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == Status.DEAD
    assert delivery.attempts == 1
    assert "Worker input did not match its input schema" in delivery.last_error
    assert "A valid integer is required." in delivery.last_error
    run = Run.objects.get()
    assert run.status == Run.Status.FAILED
    assert run.error == delivery.last_error


def test_an_emit_a_subscriber_refuses_makes_the_delivery_dead_at_once(steps):
    """A handler's ctx.emit of data a subscriber's input refuses raises at once: the
    delivery is dead after one attempt (not retried), its error naming the emitter,
    topic, subscriber and field; the attempt's state writes and emits are dropped."""
    done = Recorder()
    steps.add(EventStep(name="Tally", subscribes=["job.done"], input=NumberInput), done)
    add_step(steps, lambda input, ctx: (ctx.state.set("g", "k", 1), ctx.emit("job.done", {})))
    delivery_id = emit_one()
    assert run_delivery(delivery_id) == Run.Status.FAILED
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (Status.DEAD, 1)
    assert delivery.last_error.startswith("InvalidEmit: Worker's emit of 'job.done' was refused")
    assert 'the input of Tally (NumberInput) says {"n": ["This field is required."]}' in (
        delivery.last_error
    )
    assert not Event.objects.filter(topic="job.done").exists()
    assert not StateEntry.objects.exists()
    assert done.calls == []


def test_a_running_delivery_past_its_claim_is_claimed_again(steps):
    """A running delivery whose claimed_until passed is run again; the old Run is interrupted."""
    handler = add_step(steps)
    delivery_id = emit_one()
    (claim,) = store.claim([delivery_id], "dead-worker")
    first_run = claim.run
    assert run_delivery(delivery_id) is None  # still held by its first claim
    Delivery.objects.filter(pk=delivery_id).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert run_delivery(delivery_id, "w2") == Run.Status.SUCCEEDED
    first_run.refresh_from_db()
    assert first_run.status == Run.Status.INTERRUPTED
    assert "stopped renewing the lease" in first_run.error
    second = Run.objects.exclude(pk=first_run.pk).get()
    assert (second.status, second.attempt, second.worker) == (Run.Status.SUCCEEDED, 2, "w2")
    assert Delivery.objects.get(pk=delivery_id).status == Status.SUCCEEDED
    assert len(handler.calls) == 1


def test_a_presumed_dead_last_attempt_makes_the_delivery_dead_not_run_again(steps):
    """A run presumed dead counts as an attempt: after max_retries + 1 of them the
    delivery is dead (a handler that kills its worker is not retried for ever)."""
    handler = add_step(steps, infrastructure={"queue": {"max_retries": 1}})
    delivery_id = emit_one()
    for worker in ("w1", "w2"):
        assert store.claim([delivery_id], worker)
        Delivery.objects.filter(pk=delivery_id).update(
            claimed_until=timezone.now() - timedelta(seconds=1)
        )
    assert run_delivery(delivery_id, "w3") is None
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (Status.DEAD, 2)
    assert "Presumed dead" in delivery.last_error and "attempt 2" in delivery.last_error
    assert delivery.claim_token is None
    assert sorted(Run.objects.values_list("status", flat=True)) == [Run.Status.INTERRUPTED] * 2
    assert handler.calls == []


def test_release_hands_a_delivery_back_and_its_old_claim_cannot_complete(steps):
    """release() makes a running delivery pending again; a success of the old claim is
    discarded, its held writes not applied."""
    add_step(steps)
    delivery_id = emit_one()
    (claim,) = store.claim([delivery_id])
    run = claim.run
    assert store.release([claim], "Worker stopped") == 1
    row = Delivery.objects.get(pk=delivery_id)
    assert row.status == Status.PENDING
    assert row.attempts == 0
    assert row.enqueued_at is None
    assert row.claim_token is None
    assert row.due_at <= timezone.now()
    run.refresh_from_db()
    assert (run.status, run.error) == (Run.Status.INTERRUPTED, "Worker stopped")
    writes = []
    (recorded,), _ = store.record([Outcome.success(claim, lambda: writes.append("written"))])
    assert recorded.discarded and recorded.reason == "its delivery was handed back"
    assert writes == []
    assert Delivery.objects.get(pk=delivery_id).status == Status.PENDING
    assert store.release([claim], "again") == 0


def test_an_attempt_failing_after_hand_back_leaves_its_run_interrupted(steps):
    """A handler that fails after its delivery was handed back keeps its Run interrupted,
    and the failure is discarded: attempt uncounted, no retry scheduled."""

    def fails_after_hand_back(input, ctx):
        (claim,) = held
        assert store.release([claim], "Worker stopped; handed back") == 1
        raise RuntimeError("connection closed at shutdown")

    add_step(steps, fails_after_hand_back)
    delivery_id = emit_one()
    held = store.claim([delivery_id])
    (recorded,), _ = store.record([runner.attempt(held[0])])
    assert recorded.discarded
    assert runner.finish(recorded) == Run.Status.INTERRUPTED
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (Status.PENDING, 0, "")
    run = Run.objects.get()
    assert (run.status, run.error) == (Run.Status.INTERRUPTED, "Worker stopped; handed back")
    assert LogEntry.objects.filter(message="Attempt discarded").exists()


def test_cron_delivery_calls_handler_with_ctx_only(steps):
    """A cron step's delivery (a slot, no event) calls handler(ctx)."""
    calls = []

    def tick(ctx):
        calls.append(ctx)

    steps.add(CronStep(name="Nightly", cron="0 3 * * *"), tick)
    now = timezone.now()
    delivery = Delivery.objects.create(
        step_name="Nightly", trace_id="c" * 32, cron_slot=now, due_at=now
    )
    assert run_delivery(delivery.pk) == Run.Status.SUCCEEDED
    (ctx,) = calls
    assert isinstance(ctx, Context)
    assert ctx.trace_id == "c" * 32
    assert Delivery.objects.get(pk=delivery.pk).status == Status.SUCCEEDED


class CardDeclined(Exception):
    pass


@pytest.mark.parametrize(
    "raised, queue",
    [
        (lambda: NonRetryable("card declined"), {}),
        (lambda: CardDeclined("no funds"), {"non_retryable": [CardDeclined]}),
        (lambda: CardDeclined("no funds"), {"non_retryable": [f"{__name__}.CardDeclined"]}),
    ],
    ids=["NonRetryable", "listed-class", "listed-path"],
)
def test_an_error_marked_final_is_dead_at_once_with_one_message(steps, caplog, raised, queue):
    """A NonRetryable, or one of the step's non_retryable exceptions, makes the delivery
    dead on its first attempt (retries left), and the worker's log tells it in one
    line, without the traceback a retried failure gets."""

    def fails(input, ctx):
        raise raised()

    add_step(steps, fails, infrastructure={"queue": {"max_retries": 5, **queue}})
    delivery_id = emit_one()
    assert run_delivery(delivery_id) == Run.Status.FAILED
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (Status.DEAD, 1)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "workflow"]
    assert "not retried" in line and "Traceback" not in line
    assert Run.objects.get().traceback  # kept for the workbench, where it is read once


def test_a_retried_failure_is_logged_with_its_traceback(steps, caplog):
    """A failure worth retrying goes to the worker's log with its traceback."""

    def fails(input, ctx):
        raise ConnectionError("mail server down")

    add_step(steps, fails)
    assert run_delivery(emit_one()) == Run.Status.FAILED
    (line,) = [r.getMessage() for r in caplog.records if r.name == "workflow"]
    assert "retried" in line and "Traceback" in line and "mail server down" in line


def test_an_undeclared_emit_is_dead_at_once_naming_the_fix(steps):
    """A handler emitting a topic missing from its emits: dead on the first attempt, the
    message naming the topic and how to declare it."""

    def emits_something_else(input, ctx):
        ctx.emit("job.other", {})

    add_step(steps, emits_something_else, infrastructure={"queue": {"max_retries": 5}})
    delivery_id = emit_one()
    assert run_delivery(delivery_id) == Run.Status.FAILED
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (Status.DEAD, 1)
    assert "emitted 'job.other', which is not in its emits" in delivery.last_error


def test_an_async_handler_past_its_timeout_times_out_in_the_inline_path(steps):
    """run_delivery (FlowTester's path) cancels an async handler at its timeout too."""

    async def waits(input, ctx):
        await asyncio.sleep(30)

    add_step(steps, infrastructure={"handler": {"timeout": 0.2}, "queue": {"max_retries": 0}})
    steps.get("Worker").handler = waits
    delivery_id = emit_one()
    assert run_delivery(delivery_id) == Run.Status.FAILED
    assert Delivery.objects.get(pk=delivery_id).last_error == (
        "HandlerTimeout: timed out after 0.2 s"
    )
