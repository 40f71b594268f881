"""The project's settings plus a scratch app, ``scratch``, from the folder named by
``SCRATCH_DIR``: end-to-end tests write its step files while runserver runs."""

import os
import sys

from config.settings import *  # noqa: F403

sys.path.insert(0, os.environ["SCRATCH_DIR"])
INSTALLED_APPS = [*INSTALLED_APPS, "scratch"]  # noqa: F405
