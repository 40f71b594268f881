"""URL patterns for every API step, at the paths they declare."""

from django.urls import path

from .registry import registry
from .views import view_for


def step_urlpatterns():
    by_route = {}
    for step in registry.of_type("api"):
        by_route.setdefault(step.config.route, {}).setdefault(step.config.method, step)
    return [
        path(route, view_for(steps), name=f"step-{'-'.join(s.name for s in steps.values())}")
        for route, steps in sorted(by_route.items())
    ]


urlpatterns = step_urlpatterns()
