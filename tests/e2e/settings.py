"""The project's settings plus the probe app (test-only steps) for end-to-end tests.

Runs presumed dead are taken over after 5 s instead of 60, so the crash tests finish
quickly; the probe steps set their own retry policies.
"""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.e2e.probe"]  # noqa: F405
WORKFLOW = {**WORKFLOW, "QUEUE": {"visibility_timeout": 5}}  # noqa: F405
