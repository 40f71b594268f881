"""What every workbench page shares: the admin's context and the page's tabs."""

from django.template.response import TemplateResponse

from ..permissions import may_see

TABS = [
    ("flows", "Flows", "admin:workbench_flows"),
    ("logs", "Logs", "admin:workbench_logs"),
    ("traces", "Traces", "admin:workbench_traces"),
    ("queues", "Queues", "admin:workbench_queues"),
    ("state", "State", "admin:workflow_stateentry_changelist"),
    ("events", "Events", "admin:workflow_event_changelist"),
    ("deliveries", "Deliveries", "admin:workflow_delivery_changelist"),
    ("endpoints", "Endpoints", "admin:workbench_endpoints"),
]


def render(request, site, template, tab, title, **context):
    return TemplateResponse(
        request,
        template,
        {
            **site.each_context(request),
            "title": title,
            "tab": tab,
            "tabs": [tab for tab in TABS if may_see(request.user, tab[0])],
            **context,
        },
    )
