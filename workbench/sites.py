"""The admin site, with the workbench's pages in it (Django's "overriding the default
admin site": ``apps.WorkbenchAdminConfig`` names this class).

The pages sit under ``/admin/workbench/``, behind the admin's own login and staff check
(``admin_view``) and the view permissions of what they show (``permissions.PAGES``: 403
without them, as the admin answers), and are listed first on the admin index and in its
sidebar, those the user may open.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path, reverse

from . import permissions
from .views import endpoints, flows, logs, queues, state, traces

# (name, URL name, permissions.PAGES key)
PAGES = [
    ("Flows", "workbench_flows", "flows"),
    ("Logs", "workbench_logs", "logs"),
    ("Traces", "workbench_traces", "traces"),
    ("Queues", "workbench_queues", "queues"),
    ("Endpoints", "workbench_endpoints", "endpoints"),
]


class WorkbenchAdminSite(admin.AdminSite):
    def get_urls(self):
        def page(view, key):
            def checked(request, **kwargs):
                if not permissions.may_see(request.user, key):
                    raise PermissionDenied
                return view(request, self, **kwargs)

            return self.admin_view(checked)

        urls = [
            path("workbench/", self.admin_view(self.first_page)),
            path("workbench/flows/", page(flows.page, "flows"), name="workbench_flows"),
            path(
                "workbench/flows/steps/<str:name>/runs/",
                page(flows.step_runs, "flows"),
                name="workbench_step_runs",
            ),
            path(
                "workbench/flows/traces/",
                page(traces.flow_traces, "traces"),
                name="workbench_flow_traces",
            ),
            # The Flows page's State tab: the edit (POST) takes the change permission too.
            path("workbench/state/", page(state.entries, "state"), name="workbench_state"),
            path(
                "workbench/state/edit/",
                page(state.edit, "state"),
                name="workbench_state_edit",
            ),
            path("workbench/logs/", page(logs.page, "logs"), name="workbench_logs"),
            path("workbench/traces/", page(traces.page, "traces"), name="workbench_traces"),
            path(
                "workbench/traces/rows/",
                page(traces.rows, "traces"),
                name="workbench_trace_rows",
            ),
            path(
                "workbench/traces/<str:trace_id>/",
                page(traces.detail, "traces"),
                name="workbench_trace",
            ),
            path(
                "workbench/traces/<str:trace_id>/timeline/",
                page(traces.timeline, "traces"),
                name="workbench_trace_timeline",
            ),
            path(
                "workbench/traces/<str:trace_id>/tables/",
                page(traces.tables, "traces"),
                name="workbench_trace_tables",
            ),
            path("workbench/queues/", page(queues.page, "queues"), name="workbench_queues"),
            path(
                "workbench/queues/counts/",
                page(queues.counts, "queues"),
                name="workbench_queue_counts",
            ),
            # The actions (POST) take the change permission on deliveries too.
            path(
                "workbench/queues/replay/",
                page(queues.replay, "queues"),
                name="workbench_queue_replay",
            ),
            path(
                "workbench/queues/cancel/",
                page(queues.cancel, "queues"),
                name="workbench_queue_cancel",
            ),
            path(
                "workbench/queues/edit/",
                page(queues.edit, "queues"),
                name="workbench_queue_edit",
            ),
            path(
                "workbench/queues/pause/",
                page(queues.pause, "queues"),
                name="workbench_queue_pause",
            ),
            path(
                "workbench/endpoints/",
                page(endpoints.page, "endpoints"),
                name="workbench_endpoints",
            ),
        ]
        return urls + super().get_urls()

    def first_page(self, request):
        """``/admin/workbench/``: the first page the user may open."""
        for _, url_name, key in PAGES:
            if permissions.may_see(request.user, key):
                return redirect(f"admin:{url_name}")
        raise PermissionDenied

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        workbench = self.workbench_app(request)
        if app_label is None and workbench["models"]:
            app_list.insert(0, workbench)
        return app_list

    def workbench_app(self, request):
        pages = [
            {
                "name": name,
                "object_name": name,
                "admin_url": reverse(f"admin:{url_name}", current_app=self.name),
                "view_only": True,
                "perms": {"view": True},
            }
            for name, url_name, key in PAGES
            if permissions.may_see(request.user, key)
        ]
        return {
            "name": "Workbench",
            "app_label": "workbench",
            "app_url": pages[0]["admin_url"] if pages else "",
            "has_module_perms": True,
            "models": pages,
        }
