"""The project's settings plus the probe app (test-only steps) for end-to-end tests.

Runs presumed dead are taken over after 5 s instead of 60, so the crash tests finish
quickly; the probe steps set their own retry policies. ``SQLITE_TIMEOUT`` (seconds)
shortens SQLite's busy timeout, for a test that holds the database's write lock.
"""

import os

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.e2e.probe"]  # noqa: F405
WORKFLOW = {**WORKFLOW, "QUEUE": {"visibility_timeout": 5}}  # noqa: F405

if "SQLITE_TIMEOUT" in os.environ:
    DATABASES["default"]["OPTIONS"]["timeout"] = float(os.environ["SQLITE_TIMEOUT"])  # noqa: F405
