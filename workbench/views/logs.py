"""Logs: step log lines, newest first, filtered; new lines arrive over the websocket."""

from workflow.models import LogEntry
from workflow.registry import registry

from .common import render

PAGE = 100
LEVELS = ["debug", "info", "warn", "error"]


def filtered(params):
    """Log lines matching the page's filters, newest first (indexed by id)."""
    lines = LogEntry.objects.order_by("-id")
    if params.get("trace"):
        lines = lines.filter(trace_id=params["trace"].strip())
    if params.get("step"):
        lines = lines.filter(step_name=params["step"].strip())
    if params.get("level") in LEVELS:
        lines = lines.filter(level=params["level"])
    if params.get("q"):
        lines = lines.filter(message__icontains=params["q"])
    before = params.get("before", "")
    if before.isdigit():
        lines = lines.filter(id__lt=int(before))
    return lines


def page(request, site):
    params = {key: request.GET.get(key, "") for key in ("trace", "step", "level", "q", "before")}
    lines = list(filtered(params)[: PAGE + 1])
    older = lines[PAGE - 1].pk if len(lines) > PAGE else None
    return render(
        request,
        site,
        "workbench/logs.html",
        "logs",
        "Logs",
        lines=lines[:PAGE],
        filters=params,
        levels=LEVELS,
        older=older,
        live=not params["before"],
        steps=sorted_steps(),
    )


def sorted_steps():
    return sorted(step.name for step in registry)
