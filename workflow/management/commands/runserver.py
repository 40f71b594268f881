"""``manage.py runserver``: daphne's ASGI development server, with the workers beside it.

One command, one terminal: the web server and a django-q2 cluster (with the workflow
ticker). Ctrl-C stops both; a code change reloads both; a cluster that dies is started
again (see ``workflow.embedded``). ``WORKFLOW["EMBEDDED_WORKERS"]
= False`` leaves the workers to a separate ``manage.py qcluster``.
"""

import os
import sys

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.utils import autoreload

from workflow.conf import workflow_settings
from workflow.embedded import EmbeddedCluster
from workflow.memory import return_large_blocks

# Django's reloader parent (autoreload.restart_with_reloader and run_with_reloader),
# run by a bare interpreter: start the server, start it again when a code change makes
# it exit with 3, exit with it otherwise.
RESTART_LOOP = f"""
import os, signal, subprocess, sys
signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
env = {{**os.environ, {autoreload.DJANGO_AUTORELOAD_ENV!r}: "true"}}
try:
    while True:
        code = subprocess.run(sys.argv[1:], env=env, close_fds=False).returncode
        if code != 3:
            sys.exit(code)
except KeyboardInterrupt:
    pass
"""


class Command(DaphneRunserver):
    help = "Starts the ASGI development server and, beside it, the workflow workers."

    def run(self, **options):
        if options["use_reloader"] and os.name == "posix" and not is_reloaded_child():
            restart_loop_in_a_bare_interpreter()
        return super().run(**options)

    def inner_run(self, *args, **options):
        return_large_blocks()
        if workflow_settings.EMBEDDED_WORKERS and options.get("use_asgi", True):
            self.cluster = EmbeddedCluster(say=self.stdout.write)
            pid = self.cluster.start()
            self.stdout.write(f"Workflow workers started (django-q2 cluster, pid {pid}).")
        try:
            return super().inner_run(*args, **options)
        finally:
            if getattr(self, "cluster", None):
                self.cluster.stop()


def is_reloaded_child():
    return os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true"


def restart_loop_in_a_bare_interpreter():
    """Become the reloader's parent without Django: this process has the project, DRF,
    daphne and the rest loaded (about 65 MB of its own) and would keep them only to
    restart the server. Same process id, same signals, same exit codes."""
    args = autoreload.get_child_arguments()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-c", RESTART_LOOP, *map(str, args)])
