"""Which installed apps are this project's own code (not an installed distribution).

``startstep`` writes steps only into them, and runserver watches their ``steps/``
folders for step files that appear, change or go away.
"""

import site
import sys
from pathlib import Path

from django.apps import apps


def installed_package(path):
    """Whether ``path`` is in an installed distribution (a virtualenv may sit in the
    project's own folder, as the README's ``.venv`` does)."""
    prefixes = {sys.prefix, sys.base_prefix, *site.getsitepackages(), site.getusersitepackages()}
    return (
        any(path.is_relative_to(Path(prefix).resolve()) for prefix in prefixes if prefix)
        or "site-packages" in path.parts
    )


def project_apps():
    """The app configs whose code is not in an installed distribution: the code being
    written (under ``BASE_DIR`` as a rule, though not necessarily)."""
    return [a for a in apps.get_app_configs() if not installed_package(Path(a.path).resolve())]
