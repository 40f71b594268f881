from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = "Workflow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import bridge, checks, queue  # checks: registers the system checks
        from .registry import registry

        registry.autodiscover()
        bridge.connect()  # emits become django-q2 wake-up jobs
        queue.connect_signals()  # the worker processes' hooks
        del checks
