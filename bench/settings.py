"""The project's settings plus what only the benchmarks use.

    DJANGO_SETTINGS_MODULE=bench.settings

Adds the bench probe app (steps BenchHop and BenchNoop, plain django-q2 tasks for the
baselines) and mounts a plain DRF view beside the API steps (``bench/urls.py``).
Everything else, the broker, the database and the workers, is the project's own.
"""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench.probe"]  # noqa: F405
ROOT_URLCONF = "bench.urls"
