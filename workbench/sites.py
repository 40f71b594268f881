"""The admin site, with the workbench's pages in it (Django's "overriding the default
admin site": ``apps.WorkbenchAdminConfig`` names this class).

The pages sit under ``/admin/workbench/``, behind the admin's own login and staff check
(``admin_view``), and are listed first on the admin index and in its sidebar.
"""

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import path, reverse

from .views import endpoints, flows, logs, traces

PAGES = [
    ("Flows", "workbench_flows"),
    ("Logs", "workbench_logs"),
    ("Traces", "workbench_traces"),
    ("Endpoints", "workbench_endpoints"),
]


class WorkbenchAdminSite(admin.AdminSite):
    def get_urls(self):
        def page(view):
            return self.admin_view(lambda request, **kwargs: view(request, self, **kwargs))

        urls = [
            path("workbench/", page(lambda r, site: redirect("admin:workbench_flows"))),
            path("workbench/flows/", page(flows.page), name="workbench_flows"),
            path(
                "workbench/flows/steps/<str:name>/runs/",
                page(flows.step_runs),
                name="workbench_step_runs",
            ),
            path("workbench/logs/", page(logs.page), name="workbench_logs"),
            path("workbench/traces/", page(traces.page), name="workbench_traces"),
            path("workbench/traces/<str:trace_id>/", page(traces.detail), name="workbench_trace"),
            path(
                "workbench/traces/<str:trace_id>/timeline/",
                page(traces.timeline),
                name="workbench_trace_timeline",
            ),
            path("workbench/endpoints/", page(endpoints.page), name="workbench_endpoints"),
        ]
        return urls + super().get_urls()

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label is None and request.user.is_active and request.user.is_staff:
            app_list.insert(0, self.workbench_app())
        return app_list

    def workbench_app(self):
        pages = [
            {
                "name": name,
                "object_name": name,
                "admin_url": reverse(f"admin:{url_name}", current_app=self.name),
                "view_only": True,
                "perms": {"view": True},
            }
            for name, url_name in PAGES
        ]
        return {
            "name": "Workbench",
            "app_label": "workbench",
            "app_url": pages[0]["admin_url"],
            "has_module_perms": True,
            "models": pages,
        }
