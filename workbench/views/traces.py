"""Traces: recent traces, searchable by trace id or a value in their events' data; a
trace's page with a timeline of its runs, its events and its logs."""

import re
from dataclasses import dataclass

from django.db.models import Count, Max, Q, TextField
from django.db.models.functions import Cast
from django.http import Http404, JsonResponse
from django.utils import timezone

from workflow.graph import flow_steps
from workflow.models import Delivery, Event, LogEntry, Run, Trace
from workflow.registry import registry

from .. import graph
from .common import render

PAGE = 50
SEARCHED_EVENTS = 200
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
UNFINISHED = [Delivery.Status.PENDING, Delivery.Status.RUNNING]
NO_RUNS = {"n": 0, "last": None, "api_failed": 0, "api_refused": 0, "answered": None}


@dataclass
class TraceRow:
    trace: Trace
    status: str
    runs: int
    duration_ms: int | None
    status_code: int | None  # what its API call answered (None: it began otherwise)


def matching(query):
    """Traces whose id is ``query``, or whose events' data contain it."""
    query = query.strip()
    if TRACE_ID.match(query.lower()):
        return Trace.objects.filter(trace_id=query.lower())
    trace_ids = (
        Event.objects.annotate(text=Cast("data", TextField()))
        .filter(text__icontains=query)
        .order_by("-id")
        .values_list("trace_id", flat=True)[:SEARCHED_EVENTS]
    )
    return Trace.objects.filter(trace_id__in=set(trace_ids))


def summaries(traces):
    """Each trace with its status, run count, duration and the status code its API
    call answered, in three grouped queries.

    A trace is running while a delivery of it is pending or running (a retry waiting
    counts), failed when a delivery of it went dead or its API call failed, refused
    when its API call answered with a 4xx, and succeeded otherwise.
    """
    ids = [trace.trace_id for trace in traces]
    runs = {
        row["trace_id"]: row
        for row in Run.objects.filter(trace_id__in=ids)
        .values("trace_id")
        .annotate(
            n=Count("id"),
            last=Max("finished_at"),
            api_failed=Count("id", filter=Q(status=Run.Status.FAILED, delivery__isnull=True)),
            api_refused=Count("id", filter=Q(status=Run.Status.REFUSED, delivery__isnull=True)),
            answered=Max("status_code", filter=Q(delivery__isnull=True)),
        )
    }
    # Ordered by status, the dict keeps the last one: running or pending over dead.
    statuses = dict(
        Delivery.objects.filter(trace_id__in=ids, status__in=[*UNFINISHED, "dead"])
        .values_list("trace_id", "status")
        .order_by("trace_id", "status")
    )
    rows = []
    for trace in traces:
        row = runs.get(trace.trace_id, NO_RUNS)
        delivery_status = statuses.get(trace.trace_id)
        if delivery_status in UNFINISHED:
            status = "running"
        elif delivery_status == Delivery.Status.DEAD or row["api_failed"]:
            status = "failed"
        elif row["api_refused"]:
            status = "refused"
        else:
            status = "succeeded"
        end = row["last"]
        duration = round((end - trace.started_at).total_seconds() * 1000) if end else None
        rows.append(TraceRow(trace, status, row["n"], duration, row["answered"]))
    return rows


def page(request, site):
    query = request.GET.get("q", "").strip()
    traces = matching(query) if query else Trace.objects.all()
    traces = traces.order_by("-id")
    before = request.GET.get("before", "")
    if before.isdigit():
        traces = traces.filter(id__lt=int(before))
    found = list(traces[: PAGE + 1])
    return render(
        request,
        site,
        "workbench/traces.html",
        "traces",
        "Traces",
        rows=summaries(found[:PAGE]),
        query=query,
        older=found[PAGE - 1].pk if len(found) > PAGE else None,
        live=not query and not before,  # the newest traces: kept up to date
    )


def rows(request, site):
    """The newest traces' rows alone, which the Traces page fetches again as runs
    start and finish."""
    return render(
        request,
        site,
        "workbench/_trace_rows.html",
        "traces",
        "Traces",
        rows=summaries(list(Trace.objects.order_by("-id")[:PAGE])),
        query="",
    )


@dataclass
class Bar:
    run: Run
    left: float  # percent of the trace's span
    width: float
    duration_ms: int | None


def timeline_bars(trace_id):
    """One bar per run (a retry is a bar of its own), placed by its start and end."""
    runs = list(Run.objects.filter(trace_id=trace_id).order_by("started_at", "id"))
    if not runs:
        return [], 0
    now = timezone.now()
    start = runs[0].started_at
    end = max(run.finished_at or now for run in runs)
    span = max((end - start).total_seconds(), 0.001)
    bars = []
    for run in runs:
        finished = run.finished_at or now
        left = (run.started_at - start).total_seconds() / span * 100
        width = max((finished - run.started_at).total_seconds() / span * 100, 0.4)
        duration = round((finished - run.started_at).total_seconds() * 1000)
        bars.append(Bar(run, left, min(width, 100 - left), duration if run.finished_at else None))
    return bars, round(span * 1000)


def found_trace(trace_id):
    trace = Trace.objects.filter(trace_id=trace_id).first()
    if trace is None and not Run.objects.filter(trace_id=trace_id).exists():
        raise Http404(f"No trace {trace_id!r}")
    return trace


def events_and_deliveries(trace_id):
    return {
        "events": Event.objects.filter(trace_id=trace_id).order_by("id")[:200],
        "deliveries": Delivery.objects.filter(trace_id=trace_id).order_by("id")[:200],
    }


def detail(request, site, trace_id):
    trace = found_trace(trace_id)
    bars, span_ms = timeline_bars(trace_id)
    api_runs = [bar.run for bar in bars if bar.run.delivery_id is None]
    return render(
        request,
        site,
        "workbench/trace.html",
        "traces",
        f"Trace {trace_id}",
        trace=trace,
        trace_id=trace_id,
        api_run=api_runs[0] if api_runs else None,
        bars=bars,
        span_ms=span_ms,
        lines=LogEntry.objects.filter(trace_id=trace_id).order_by("id")[:500],
        **events_and_deliveries(trace_id),
    )


def tables(request, site, trace_id):
    """The trace's events and deliveries alone, which its page fetches again as its
    runs change."""
    found_trace(trace_id)
    return render(
        request,
        site,
        "workbench/_trace_tables.html",
        "traces",
        "Events and deliveries",
        **events_and_deliveries(trace_id),
    )


def timeline(request, site, trace_id):
    """The timeline alone, which the trace page fetches again as runs change."""
    found_trace(trace_id)
    bars, span_ms = timeline_bars(trace_id)
    return render(
        request,
        site,
        "workbench/_timeline.html",
        "traces",
        "Timeline",
        bars=bars,
        span_ms=span_ms,
    )


FLOW_TRACES = 30


def of_flow(step_names, query=""):
    """The newest traces that ran one of ``step_names``; with ``query``, those whose id
    starts with it or is it, that ran a step whose name contains it, or whose events'
    data contain it."""
    ran = Run.objects.filter(step_name__in=step_names).values("trace_id")
    traces = Trace.objects.filter(trace_id__in=ran)
    query = query.strip()
    if query:
        by_step = Run.objects.filter(step_name__in=step_names, step_name__icontains=query)
        found = Q(trace_id__in=matching(query).values("trace_id")) | Q(
            trace_id__in=by_step.values("trace_id")
        )
        if re.fullmatch(r"[0-9a-f]{4,32}", query.lower()):
            found |= Q(trace_id__startswith=query.lower())
        traces = traces.filter(found)
    return list(traces.order_by("-id")[:FLOW_TRACES])


def flow_traces(request, site):
    """A flow's newest traces (JSON), searched by ``?q=``, for the Flows page's Tracing
    tab, which fetches them again as runs start and finish."""
    flow = request.GET.get("flow") or next(iter(graph.flows()), "")
    step_names = [step.name for step in flow_steps(registry, flow)] if flow else []
    if not step_names:
        raise Http404(f"No flow named {flow!r}")
    return JsonResponse(
        {
            "traces": [
                {
                    "traceId": row.trace.trace_id,
                    "entryStep": row.trace.entry_step,
                    "startedAt": row.trace.started_at.isoformat(),
                    "status": row.status,
                    "runs": row.runs,
                    "durationMs": row.duration_ms,
                    "statusCode": row.status_code,
                }
                for row in summaries(of_flow(step_names, request.GET.get("q", "")))
            ]
        }
    )
