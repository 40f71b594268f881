"""What the runtime records: events, deliveries, runs, state and step logs.

The delivery table is the source of truth for background work: a django-q2 job only
wakes a worker for one delivery; claims, retries and due times live here.
"""

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


def new_trace_id():
    return uuid.uuid4().hex


class Event(models.Model):
    """One emit: a topic and its data, within a trace."""

    topic = models.CharField(max_length=200)
    data = models.JSONField(encoder=DjangoJSONEncoder)
    trace_id = models.CharField(max_length=32, db_index=True)
    emitted_by = models.CharField(max_length=200, blank=True)
    # emit(..., idempotency_key=k): a second emit of the topic with the same key is
    # the same event, delivered once.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 (NULL: no key)
    # How many emits led to this one in its trace (0: emitted by an API step, a cron
    # slot or from outside any step), and the event whose delivery emitted it. An emit
    # deeper than WORKFLOW["MAX_DEPTH"] fails: a cycle of steps stops there.
    depth = models.PositiveSmallIntegerField(default=0, db_default=0)
    caused_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        # No index and no constraint: written on every emit, read only to name a cycle.
        db_index=False,
        db_constraint=False,
        on_delete=models.DO_NOTHING,
        related_name="+",
    )
    # An event made by editing another's data to replay one of its deliveries
    # (``replay.replay_edited``): the event it was edited from, in the same trace.
    edited_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="edits"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["topic", "-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["topic", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="workflow_event_one_per_idempotency_key",
            )
        ]

    def __str__(self):
        return f"{self.topic} #{self.pk}"


class Delivery(models.Model):
    """An event on its way to one subscriber (or one slot of a cron step).

    Its life (docs/concepts.md draws it): pending -> running (claimed, under a lease its
    worker renews) -> succeeded, or pending again after a failed attempt (due after the
    backoff), or dead after the last one; cancelled from pending or running. Every
    change is made by ``workflow.store``.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        DEAD = "dead"
        CANCELLED = "cancelled"

    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    step_name = models.CharField(max_length=200)
    trace_id = models.CharField(max_length=32, db_index=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    # The lease: until when the running attempt holds the delivery (its worker renews
    # it), and which worker process that is ("host:pid/start").
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True, default="", db_default="")
    cron_slot = models.DateTimeField(null=True, blank=True)
    # fifo steps: deliveries with the same group run one at a time, in id (emit) order.
    message_group = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 (NULL: no group)
    # Flow control (``workflow.flow_control``): the value of the step's key field in the
    # event data (its concurrency, rate and debounce are counted per key), and the
    # priority (higher first) among deliveries waiting for a place.
    flow_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 (NULL: no key)
    priority = models.SmallIntegerField(default=0, db_default=0)
    # A replay is a new delivery of the same event and trace, linked to the one it re-runs.
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["step_name", "status"]),
            models.Index(
                fields=["step_name", "message_group", "id"],
                condition=Q(message_group__isnull=False),
                name="workflow_delivery_fifo",
            ),
            # The fifo checks (is one ahead of me? which is next?) and the sweeper's
            # look only at live deliveries of a group: this index holds only those, so
            # they stay fast when a group has millions of finished ones (BENCHMARKS.md).
            models.Index(
                fields=["step_name", "message_group", "id"],
                condition=Q(message_group__isnull=False, status__in=["pending", "running"]),
                name="workflow_delivery_fifo_live",
            ),
            # The sweeper's two questions, four times a second: which pending deliveries
            # are due, which running ones are past their visibility timeout. Indexes of
            # those rows alone stay small however many deliveries finished; SQLite, once
            # ANALYZEd, would otherwise scan the table (status says little to its planner).
            models.Index(
                fields=["due_at"], condition=Q(status="pending"), name="workflow_delivery_due"
            ),
            models.Index(
                fields=["claimed_until"],
                condition=Q(status="running"),
                name="workflow_delivery_expiring",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["step_name", "cron_slot"],
                condition=Q(cron_slot__isnull=False),
                name="workflow_delivery_one_per_cron_slot",
            ),
            # A delivery has at most one replay that is waiting, running or succeeded:
            # two replays submitted at once make one (the other is refused).
            models.UniqueConstraint(
                fields=["replay_of"],
                condition=Q(
                    replay_of__isnull=False, status__in=["pending", "running", "succeeded"]
                ),
                name="workflow_delivery_one_live_replay",
            ),
        ]

    def __str__(self):
        return f"{self.step_name} #{self.pk} ({self.status})"


class Run(models.Model):
    """One execution of a step: an API call, or one attempt at a delivery.

    An API call's run has the ``status_code`` it answered, and its status says how it
    went for the client: succeeded (below 400), refused (a 4xx: a bad body, a missing
    permission, a 404 or 409 of the handler's own) or failed (a 5xx). A refused call is
    no fault of the step, and no success either.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        REFUSED = "refused"
        FAILED = "failed"
        INTERRUPTED = "interrupted"

        @classmethod
        def of_answer(cls, status_code):
            """The status of an API call answered with ``status_code``."""
            if status_code >= 500:
                return cls.FAILED
            return cls.REFUSED if status_code >= 400 else cls.SUCCEEDED

    step_name = models.CharField(max_length=200)
    trace_id = models.CharField(max_length=32, db_index=True)
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status, default=Status.RUNNING)
    # The HTTP status an API call answered with (None: a background run).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["step_name", "-started_at"])]

    def __str__(self):
        return f"{self.step_name} run #{self.pk} ({self.status})"

    @classmethod
    def of_attempt(cls, delivery, worker, now):
        """The (unsaved) run of the attempt ``delivery`` was just claimed for."""
        return cls(
            step_name=delivery.step_name,
            trace_id=delivery.trace_id,
            delivery=delivery,
            attempt=delivery.attempts,
            started_at=now,
            worker=worker,
        )


class StateEntry(models.Model):
    """One value in the shared state: (group, key) -> JSON."""

    group = models.CharField(max_length=200)
    key = models.CharField(max_length=500)
    value = models.JSONField(encoder=DjangoJSONEncoder, null=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group", "key"]
        verbose_name_plural = "state entries"
        constraints = [
            models.UniqueConstraint(fields=["group", "key"], name="workflow_state_group_key")
        ]

    def __str__(self):
        return f"{self.group}/{self.key}"


class LogEntry(models.Model):
    """A structured line from a step's logger."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    level = models.CharField(max_length=8)
    message = models.TextField()
    step_name = models.CharField(max_length=200, db_index=True)
    trace_id = models.CharField(max_length=32, db_index=True)
    fields = models.JSONField(encoder=DjangoJSONEncoder, default=dict)
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs"
    )

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "log entries"

    def __str__(self):
        return f"[{self.step_name}] {self.message}"


class IdempotentResponse(models.Model):
    """The first response of an API step to a request with an ``Idempotency-Key`` header."""

    step_name = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    # An HMAC of the method, path and body: a repeat with another body is refused.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField(encoder=DjangoJSONEncoder, null=True)
    headers = models.JSONField(default=dict)
    trace_id = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["step_name", "key"], name="workflow_idempotent_one_per_key"
            )
        ]

    def __str__(self):
        return f"{self.step_name} {self.key}"


class Trace(models.Model):
    """Where a trace began: an API call, a cron slot, or an emit from outside any step.

    The workbench lists recent traces from this table (one indexed row per trace);
    their runs, events and logs share the ``trace_id``.
    """

    trace_id = models.CharField(max_length=32, unique=True)
    entry_step = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"{self.entry_step or 'emit'} {self.trace_id}"


class PausedQueue(models.Model):
    """A step whose queue is paused: its pending deliveries wait, unclaimed, until it
    is resumed (``workflow.pauses``); attempts already running finish."""

    step_name = models.CharField(max_length=200, unique=True)
    paused_at = models.DateTimeField(default=timezone.now)
    paused_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["step_name"]

    def __str__(self):
        return f"{self.step_name} (paused)"


class JoinState(models.Model):
    """What a join step (``EventStep(join=...)``) has received for one key: each topic's
    event and data, until all have arrived (``fired``: its handler runs once, with them)
    or its timeout passed (``timed_out``). ``workflow.joins`` keeps it."""

    class Status(models.TextChoices):
        OPEN = "open"
        FIRED = "fired"
        TIMED_OUT = "timed_out"

    step_name = models.CharField(max_length=200)
    key = models.CharField(max_length=255)  # the key's value, as JSON
    trace_id = models.CharField(max_length=32)  # the first arrival's
    parts = models.JSONField(default=dict)  # {topic: {"event": id, "data": ...}}
    status = models.CharField(max_length=16, choices=Status, default=Status.OPEN)
    deadline = models.DateTimeField()
    fired_event_id = models.BigIntegerField(null=True, blank=True)  # the completing arrival
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["step_name", "key"], name="workflow_join_one_per_key")
        ]
        indexes = [models.Index(fields=["status", "deadline"])]

    def __str__(self):
        return f"{self.step_name} join {self.key} ({self.status})"
