"""The store's side of flow control (``workflow.flow_control``): whether a delivery of a
guarded step may start now, what the sweeper must leave alone, and who goes next when
a place frees.

Each answer is read from the delivery table (and the runs, for the rate window) inside
the claim's transaction, after ``lock_step``: claims of one guarded step take turns
(SQLite's write lock; an advisory lock on PostgreSQL), so two workers never both take
the last place.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Q

from ..models import Delivery, Run
from ..registry import registry

Status = Delivery.Status


@dataclass(frozen=True)
class Hold:
    """Why a delivery may not start now: ``superseded`` by a newer delivery (debounce:
    it is cancelled), ``until`` a time (the rate window: it is due again then), or
    neither (it waits for a place: concurrency, or a delivery of higher priority)."""

    reason: str
    superseded_by: int | None = None
    until: datetime | None = None


def flow_of(step_name):
    """The ``FlowControl`` of the step named ``step_name``, or None."""
    step = registry.get(step_name)
    return getattr(step.config, "flow_control", None) if step else None


def guarded_steps():
    """Names of the steps whose claims must look at their other deliveries first."""
    return registry.guarded()


def _same_key(queryset, flow, delivery, limit):
    if limit in flow.keyed:
        return queryset.filter(flow_key=delivery.flow_key)
    return queryset


def hold(delivery, now):
    """None if ``delivery`` (of a guarded step) may start at ``now``, else its ``Hold``."""
    flow = flow_of(delivery.step_name)
    if flow is None or not flow.guarded:
        return None
    mine = Delivery.objects.filter(step_name=delivery.step_name).exclude(pk=delivery.pk)
    if flow.debounce and delivery.attempts == 0 and delivery.replay_of_id is None:
        # A newer one cancelled (its trace was, or it was superseded in turn by one that
        # is still there) supersedes nothing: the last event not cancelled runs.
        newer = (
            _same_key(mine, flow, delivery, "debounce")
            .filter(event_id__gt=delivery.event_id, replay_of=None)
            .exclude(status=Status.CANCELLED)
        )
        if pk := newer.order_by("-event_id").values_list("pk", flat=True).first():
            return Hold(f"Debounced: superseded by delivery {pk}", superseded_by=pk)
    if flow.concurrency:
        running = _same_key(mine, flow, delivery, "concurrency").filter(holding(now))
        if running.count() >= flow.concurrency:
            return Hold(f"Waits: {flow.concurrency} already running")
    if flow.rate_limit:
        starts = Run.objects.filter(
            step_name=delivery.step_name,
            delivery__isnull=False,
            started_at__gt=now - timedelta(seconds=flow.rate_period),
        )
        if "rate_limit" in flow.keyed:
            starts = starts.filter(delivery__flow_key=delivery.flow_key)
        recent = list(
            starts.order_by("-started_at").values_list("started_at", flat=True)[: flow.rate_limit]
        )
        if len(recent) >= flow.rate_limit:
            until = recent[-1] + timedelta(seconds=flow.rate_period)
            return Hold(f"Waits: rate limit {flow.rate_limit}/{flow.rate_period:g}s", until=until)
    if (flow.concurrency or flow.rate_limit) and callable(flow.priority):
        # (A priority that is one number for the step gives every delivery the same.)
        limit = "concurrency" if flow.concurrency else "rate_limit"
        ahead = _same_key(mine, flow, delivery, limit).filter(
            status=Status.PENDING, due_at__lte=now, priority__gt=delivery.priority
        )
        if ahead.exists():
            return Hold("Waits: a delivery of higher priority goes first")
    return None


def debounce_due(step_name, flow, flow_key, now):
    """When a new delivery of a debounced step is due: ``period`` from ``now``, but with
    ``max_wait``, no later than that long after its burst's first event (the burst: the
    step's (or key's) first deliveries not yet started since the last one that did; a
    burst older than ``max_wait`` and ``period`` together has ended, its last run late)."""
    due = now + timedelta(seconds=flow.debounce)
    if not flow.debounce_max_wait:
        return due
    mine = Delivery.objects.filter(step_name=step_name, replay_of=None)
    if "debounce" in flow.keyed:
        mine = mine.filter(flow_key=flow_key)
    horizon = now - timedelta(seconds=flow.debounce_max_wait + flow.debounce)
    started = mine.filter(attempts__gt=0).aggregate(at=Max("created_at"))["at"]
    burst = mine.filter(attempts=0, created_at__gt=max(horizon, started or horizon))
    first = burst.aggregate(at=Min("created_at"))["at"]
    if first is None:
        return due
    return max(now, min(due, first + timedelta(seconds=flow.debounce_max_wait)))


def holding(now):
    """Attempts that hold a place of a concurrency limit at ``now``: running, with a
    lease not run out (one that ran out is presumed dead: its worker stopped, and the
    sweeper takes its delivery again)."""
    return Q(status=Status.RUNNING, claimed_until__gte=now)


def blocked(now):
    """The deliveries the sweeper leaves alone at ``now``: those of concurrency-limited
    steps (or keys) whose every place is taken (woken when a place frees: ``next_up``);
    None when there are none."""
    limited = {}
    for name in guarded_steps():
        flow = flow_of(name)
        if flow.concurrency:
            limited[name] = flow
    if not limited:
        return None
    full = None
    running = (
        Delivery.objects.filter(holding(now), step_name__in=list(limited))
        .values("step_name", "flow_key")
        .annotate(n=Count("pk"))
        .order_by()
    )
    step_wide = {}
    for row in running:
        flow = limited[row["step_name"]]
        if "concurrency" in flow.keyed:
            if row["n"] >= flow.concurrency:
                full = _either(full, Q(step_name=row["step_name"], flow_key=row["flow_key"]))
        else:
            step_wide[row["step_name"]] = step_wide.get(row["step_name"], 0) + row["n"]
    for name, n in step_wide.items():
        if n >= limited[name].concurrency:
            full = _either(full, Q(step_name=name))
    return full


def _either(q, other):
    return other if q is None else q | other


def next_up(delivery, now):
    """Once an attempt of a concurrency-limited step ends (succeeded, dead, or pending
    a retry): the ids of the deliveries to wake for the place it freed, the highest
    priority first (then the oldest)."""
    flow = flow_of(delivery.step_name)
    if flow is None or not flow.concurrency:
        return []
    waiting = Delivery.objects.filter(
        step_name=delivery.step_name, status=Status.PENDING, due_at__lte=now
    ).exclude(pk=delivery.pk)
    waiting = _same_key(waiting, flow, delivery, "concurrency")
    return list(waiting.order_by("-priority", "pk").values_list("pk", flat=True)[:1])
