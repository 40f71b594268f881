"""The project's settings plus the probe app (test-only steps) for end-to-end tests."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.e2e.probe"]  # noqa: F405
