"""Flows: the graph of a flow, its steps' configs, run counts that update live, and
when each cron step runs next; under the graph, a panel with the flow's traces, the
state and the flow's log lines, each tab shown to those who may see what it shows."""

from datetime import timedelta

from django.db.models import Count
from django.http import Http404, JsonResponse
from django.utils import timezone

from workflow.graph import flow_steps
from workflow.models import LogEntry, Run
from workflow.registry import registry

from .. import describe, graph, permissions
from ..live import log_message
from .common import render

COUNTED_SINCE = timedelta(hours=24)
LAST_RUNS = 10
LAST_LOGS = 100


BUCKETS = ("running", "succeeded", "refused", "failed")


def run_counts(step_names, since):
    """``{step: {"running": n, "succeeded": n, "refused": n, "failed": n}}`` for runs
    started since: an API call answered with a 4xx is refused, not a success."""
    counts = {name: dict.fromkeys(BUCKETS, 0) for name in step_names}
    rows = (
        Run.objects.filter(step_name__in=step_names, started_at__gte=since)
        .values_list("step_name", "status")
        .annotate(n=Count("id"))
    )
    for step_name, status, n in rows:
        bucket = "failed" if status in (Run.Status.FAILED, Run.Status.INTERRUPTED) else status
        counts[step_name][bucket] += n
    return counts


def page(request, site):
    names = graph.flows()
    flow = request.GET.get("flow") or (names[0] if names else "")
    if names and flow not in names:
        raise Http404(f"No flow named {flow!r}")
    steps = flow_steps(registry, flow) if flow else []
    # A noop step has no handler: it never runs, so its card counts nothing.
    step_names = [step.name for step in steps if step.type in graph.COUNTED_KINDS]
    now = timezone.now()
    since = now - COUNTED_SINCE
    counts = run_counts(step_names, since)
    drawing = graph.drawing(flow, now) if flow else None
    for node in drawing["nodes"] if drawing else []:
        node.counts = counts.get(node.id, {}) if node.counted else {}
    running = list(
        Run.objects.filter(
            step_name__in=step_names, status=Run.Status.RUNNING, started_at__gte=since
        ).values_list("id", flat=True)[:1000]
    )
    user = request.user
    shown = {key: permissions.may_see(user, key) for key in ("traces", "state", "logs")}
    lines = (
        LogEntry.objects.filter(step_name__in=[step.name for step in steps]).order_by("-id")
        if shown["logs"] and steps
        else LogEntry.objects.none()
    )
    return render(
        request,
        site,
        "workbench/flows.html",
        "flows",
        "Flows",
        flows=names,
        flow=flow,
        kinds=[(kind, graph.KIND_NAMES[kind]) for kind in ("api", "event", "cron", "noop")],
        drawing=drawing,
        shown=shown,
        may_edit_state=permissions.may_edit_state(user),
        live_state={
            # The last lines of the flow's steps, newest first, for the Logs tab.
            "logs": [log_message(line) for line in lines[:LAST_LOGS]],
            "steps": {step.name: describe.step_detail(step) for step in steps},
            "counts": counts,
            "running": running,
            "nextRuns": {
                node.id: [run.as_json() for run in node.upcoming]
                for node in (drawing["nodes"] if drawing else [])
                if node.upcoming
            },
        },
    )


def step_runs(request, site, name):
    """The last runs of a step, for its panel on the Flows page (JSON); a cron step's
    next runs too, for the page to go on showing the next once those it has are past."""
    step = registry.get(name)
    if step is None:
        raise Http404(f"No step named {name!r}")
    runs = Run.objects.filter(step_name=name).order_by("-started_at")[:LAST_RUNS]
    upcoming = graph.next_runs(step.config.cron) if step.type == "cron" else []
    return JsonResponse(
        {
            "nextRuns": [run.as_json() for run in upcoming],
            "runs": [
                {
                    "id": run.pk,
                    "status": run.status,
                    "statusCode": run.status_code,
                    "attempt": run.attempt,
                    "traceId": run.trace_id,
                    "startedAt": run.started_at.isoformat(),
                    "durationMs": duration_ms(run),
                    "error": run.error[:300],
                }
                for run in runs
            ],
        }
    )


def duration_ms(run):
    if run.finished_at is None:
        return None
    return round((run.finished_at - run.started_at).total_seconds() * 1000)
