"""Queues: per event and cron step, its deliveries waiting, retrying, running and dead,
with how long the oldest due one has waited (counts the page fetches again while it is
open); each step's newest dead letters with their error and the traceback of their last
attempt; and, for users who may (``permissions.may_replay``), replay a dead letter (as
it was, or on edited data), cancel a trace, as the admin's actions on deliveries do,
and pause or resume a step's queue (``workflow.pauses``)."""

import json
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, Min, OuterRef, Q, Subquery
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from workflow import pauses
from workflow.errors import InvalidEmit, NotJSON
from workflow.models import Delivery, Run
from workflow.registry import registry
from workflow.replay import NotReplayable, dead_letters, replay_each, replay_edited
from workflow.store import store

from ..permissions import may_replay
from .common import render
from .traces import TRACE_ID

QUEUED_TYPES = ("event", "cron")  # the steps that have deliveries
DEAD_SHOWN = 20  # the newest dead letters listed per step
OPEN_SECTIONS = 3  # up to this many steps with dead letters: each one's list shown open
Status = Delivery.Status
LIVE = [Status.PENDING, Status.RUNNING]


def queued_steps():
    return sorted((step for step in registry if step.type in QUEUED_TYPES), key=lambda s: s.name)


def age(seconds):
    """A wait for people to read: "0.4 s", "12.5 s", "3 min", "2.5 h", "3.2 d"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def queue_rows(steps, now) -> list[dict[str, Any]]:
    """One row per step: its deliveries

    - ``pending``: waiting to run, due (new, or a retry whose backoff is over), plus the
      new ones emitted with a delay and not due yet;
    - ``retrying``: failed at least once, waiting for their backoff;
    - ``running``: claimed, an attempt running;
    - ``dead``: dead letters as ``workflow.replay.dead_letters`` finds them (not yet
      replayed, their step not since succeeded for the same event);

    and ``oldest``, how long the oldest due pending one has waited ("" if none), and
    whether its queue is ``paused``. Three queries, whatever the number of steps.
    """
    names = [step.name for step in steps]
    pending = Q(status=Status.PENDING)
    due = pending & Q(due_at__lte=now)
    live = {
        row["step_name"]: row
        for row in Delivery.objects.filter(step_name__in=names, status__in=LIVE)
        .values("step_name")
        .annotate(
            pending=Count("id", filter=due | (pending & Q(attempts=0))),
            retrying=Count("id", filter=pending & Q(attempts__gt=0, due_at__gt=now)),
            running=Count("id", filter=Q(status=Status.RUNNING)),
            oldest_due=Min("due_at", filter=due),
        )
    }
    dead = dict(
        dead_letters()
        .filter(step_name__in=names)
        .values_list("step_name")
        .annotate(n=Count("id"))
        .order_by()
    )
    paused = pauses.paused()
    rows = []
    for step in steps:
        counts = live.get(step.name, {})
        oldest_due = counts.get("oldest_due")
        waited = max((now - oldest_due).total_seconds(), 0) if oldest_due else None
        rows.append(
            {
                "step": step.name,
                "type": step.type,
                "pending": counts.get("pending", 0),
                "retrying": counts.get("retrying", 0),
                "running": counts.get("running", 0),
                "dead": dead.get(step.name, 0),
                "oldestSeconds": round(waited, 3) if waited is not None else None,
                "oldest": age(waited) if waited is not None else "",
                "paused": step.name in paused,
            }
        )
    return rows


@dataclass
class DeadLetters:
    step: str
    count: int  # all of the step's dead letters
    letters: list[Delivery]  # the newest DEAD_SHOWN


def dead_sections(rows):
    """For each step with dead letters, its newest ones (one query per such step), each
    with the traceback of its last attempt and whether its trace still has deliveries
    pending or running (to cancel)."""
    last_run = Run.objects.filter(delivery=OuterRef("pk")).order_by("-id")
    live_in_trace = Delivery.objects.filter(trace_id=OuterRef("trace_id"), status__in=LIVE)
    return [
        DeadLetters(
            row["step"],
            row["dead"],
            list(
                dead_letters(row["step"])
                .select_related("event")
                .annotate(
                    last_traceback=Subquery(last_run.values("traceback")[:1]),
                    trace_live=Exists(live_in_trace),
                )
                .order_by("-id")[:DEAD_SHOWN]
            ),
        )
        for row in rows
        if row["dead"]
    ]


def page(request, site, editing=None):
    """The page; ``editing``: an edit of a dead letter's data that was refused, kept in
    its form (``{"delivery", "text"}``, status 400; the reason is a message)."""
    rows = queue_rows(queued_steps(), timezone.now())
    sections = dead_sections(rows)
    response = render(
        request,
        site,
        "workbench/queues.html",
        "queues",
        "Queues",
        rows=rows,
        sections=sections,
        open_sections=len(sections) <= OPEN_SECTIONS or editing is not None,
        dead_shown=DEAD_SHOWN,
        may_act=may_replay(request.user),
        editing=editing,
    )
    if editing is not None:
        response.status_code = 400
    return response


def counts(request, site):
    """The table's rows (JSON), which the page fetches again while it is open."""
    return JsonResponse({"rows": queue_rows(queued_steps(), timezone.now())})


def acting(view):
    """A POST-only action, for users who may replay and cancel (403 for the others)."""

    @require_POST
    def checked(request, site):
        if not may_replay(request.user):
            raise PermissionDenied
        view(request)
        return redirect("admin:workbench_queues")

    return checked


@acting
def replay(request):
    """Replay one dead letter: a new delivery of the same event in the same trace."""
    delivery_id = request.POST.get("delivery", "")
    delivery = Delivery.objects.filter(pk=delivery_id).first() if delivery_id.isdigit() else None
    if delivery is None:
        raise Http404(f"No delivery {delivery_id!r}")
    replays, refusals = replay_each([delivery])
    for again in replays:
        messages.success(
            request,
            f"Replayed delivery {delivery.pk} ({delivery.step_name}) as delivery {again.pk}.",
        )
    for reason in refusals:
        messages.warning(request, f"Not replayed: {reason}")


@acting
def cancel(request):
    """Cancel a trace: its pending and running deliveries stop (``store.cancel``)."""
    trace_id = request.POST.get("trace", "").strip().lower()
    if not TRACE_ID.match(trace_id):
        messages.error(request, "Not a trace id: a trace id is 32 hexadecimal digits.")
        return
    cancelled = store.cancel(trace_id)
    if not cancelled.pending and not cancelled.running:
        messages.info(
            request, f"Nothing to cancel: trace {trace_id} has no pending or running delivery."
        )
        return
    messages.success(
        request,
        f"Cancelled {cancelled.pending} pending and {cancelled.running} running deliveries "
        f"of trace {trace_id}.",
    )


@acting
def pause(request):
    """Pause (``action=pause``) or resume (``action=resume``) a step's queue."""
    step, action = request.POST.get("step", ""), request.POST.get("action", "")
    if action not in ("pause", "resume"):
        raise Http404(f"No action {action!r}")
    try:
        changed = getattr(pauses, action)(
            step, **({"by": request.user.get_username()} if action == "pause" else {})
        )
    except pauses.UnknownStep as exc:
        raise Http404(str(exc)) from None
    if not changed:
        messages.info(
            request, f"{step} was {'already paused' if action == 'pause' else 'not paused'}."
        )
    elif action == "pause":
        messages.success(request, f"Paused {step}: its deliveries wait until it is resumed.")
    else:
        messages.success(request, f"Resumed {step}: its waiting deliveries run.")


@require_POST
def edit(request, site):
    """Replay a dead letter on edited data (``replay.replay_edited``): a new event in
    its trace, for its step only. Data that is not JSON, or that the step's input
    refuses, is kept in its form, the reason above (400); nothing is recorded."""
    if not may_replay(request.user):
        raise PermissionDenied
    delivery_id, text = request.POST.get("delivery", ""), request.POST.get("data", "")
    delivery = Delivery.objects.filter(pk=delivery_id).first() if delivery_id.isdigit() else None
    if delivery is None:
        raise Http404(f"No delivery {delivery_id!r}")
    try:
        again = replay_edited(delivery, json.loads(text))
    except json.JSONDecodeError as exc:
        error = f"Not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
    except (InvalidEmit, NotJSON, NotReplayable) as exc:
        error = f"Not replayed: {exc}"
    else:
        messages.success(
            request,
            f"Replayed delivery {delivery.pk} ({delivery.step_name}) on edited data as "
            f"delivery {again.pk} (event {again.event_id}, in the same trace).",
        )
        return redirect("admin:workbench_queues")
    messages.error(request, error)  # at the top, even if the letter is no longer listed
    return page(request, site, editing={"delivery": delivery.pk, "text": text})
