from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = "Workflow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django_q.signals import post_execute, post_spawn

        from . import checks  # noqa: F401  (registers the system checks)
        from .executor import stop_gracefully_on_sigterm
        from .registry import registry

        registry.autodiscover()
        post_spawn.connect(stop_gracefully_on_sigterm, dispatch_uid="workflow.sigterm")
        # django-q2's monitor saves and acknowledges each job: with DEBUG on, its
        # connection would keep those queries (up to 9,000), as no request clears them.
        post_execute.connect(_forget_queries, dispatch_uid="workflow.forget_queries")


def _forget_queries(**kwargs):
    from django.db import reset_queries

    reset_queries()
