from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class WorkbenchConfig(AppConfig):
    """The workbench: admin pages over what the workflow runtime records, live."""

    default = True
    name = "workbench"
    verbose_name = "Workbench"

    def ready(self):
        from workflow.signals import log_written, run_finished, run_started

        from .live import broadcast_log, broadcast_run

        log_written.connect(broadcast_log, dispatch_uid="workbench.live.log")
        run_started.connect(broadcast_run, dispatch_uid="workbench.live.run_started")
        run_finished.connect(broadcast_run, dispatch_uid="workbench.live.run_finished")


class WorkbenchAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin, whose default site also serves the workbench's pages."""

    default = False
    default_site = "workbench.sites.WorkbenchAdminSite"
