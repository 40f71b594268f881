"""The project's landing page at ``/``: what runs here, and where to go next.

It lists the flows and API steps of the registry, says whether workers run beside this
server, and links the workbench, the API's documents and the admin. It is the admin's
"View site". An API step that declares the path ``/`` owns it (config/urls.py serves the
steps first) and this page is not served.
"""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.views.decorators.http import require_safe

from workflow.api_urls import documents
from workflow.embedded import EmbeddedCluster
from workflow.registry import registry


def flows():
    """``[(flow, [step, ...])]``: each flow with its steps, API steps first."""
    order = {"api": 0, "cron": 1, "event": 2, "noop": 3}
    return [
        (
            flow,
            sorted(
                (step for step in registry if flow in step.config.flows),
                key=lambda step: (order.get(step.type, 9), step.name),
            ),
        )
        for flow in registry.flows()
    ]


def api_steps():
    return sorted(registry.of_type("api"), key=lambda s: (s.config.path, s.config.method))


@require_safe
def home(request):
    return TemplateResponse(
        request,
        "home.html",
        {
            **admin.site.each_context(request),
            "title": "Workflow steps",
            "flows": flows(),
            "api_steps": api_steps(),
            "step_count": len(registry.steps),
            "workers_beside_server": EmbeddedCluster.running_here(),
            "documents": documents(),
        },
    )
