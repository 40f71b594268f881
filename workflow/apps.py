from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = "Workflow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django_q.signals import post_spawn

        from . import checks  # noqa: F401  (registers the system checks)
        from .executor import stop_gracefully_on_sigterm
        from .registry import registry

        registry.autodiscover()
        post_spawn.connect(stop_gracefully_on_sigterm, dispatch_uid="workflow.sigterm")
