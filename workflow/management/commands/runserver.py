"""``manage.py runserver``: daphne's ASGI development server, with the workers beside it.

One command, one terminal: the web server and a django-q2 cluster (with the workflow
ticker). Ctrl-C stops both; a code change reloads both, a step file added or removed
too (``workflow.reloader``); a broken step file stops both until it is fixed; a cluster
that dies is started again (see ``workflow.embedded``). ``WORKFLOW["EMBEDDED_WORKERS"]
= False`` leaves the workers to a separate ``manage.py qcluster``.
"""

import logging
import os
import sys

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.conf import settings
from django.core.management.base import SystemCheckError
from django.urls import NoReverseMatch, reverse
from django.utils import autoreload

from workflow.conf import workflow_settings
from workflow.embedded import EmbeddedCluster
from workflow.memory import return_large_blocks
from workflow.reloader import run_with_reloader

server_log = logging.getLogger("django.channels.server")

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


WAITING_FOR_A_FIX = (
    "runserver is waiting: fix the errors above and save (or remove the file at fault); "
    "the server and its workers start again by themselves."
)


class Command(DaphneRunserver):
    help = "Starts the ASGI development server and, beside it, the workflow workers."

    def run(self, **options):
        if options["use_reloader"] and is_reloaded_child():
            return run_with_reloader(self.inner_run, **options)
        if options["use_reloader"] and os.name == "posix":
            restart_loop_in_a_bare_interpreter()
        return super().run(**options)

    def inner_run(self, *args, **options):
        """Daphne's: system checks, then migrations checked, then the server; the
        workers start once the checks passed (``check_migrations``). A failed check
        leaves the reloader watching for the fix, with no traceback."""
        return_large_blocks()
        self.embedded = workflow_settings.EMBEDDED_WORKERS and options.get("use_asgi", True)
        try:
            return super().inner_run(*args, **options)
        except SystemCheckError as exc:
            if not options["use_reloader"]:
                raise
            self.stderr.write(str(exc))
            self.stderr.write(WAITING_FOR_A_FIX)
        finally:
            if getattr(self, "cluster", None):
                self.cluster.stop()

    def check_migrations(self):
        super().check_migrations()
        if self.embedded:
            self.cluster = EmbeddedCluster(say=self.stdout.write)
            pid = self.cluster.start()
            self.stdout.write(f"Workflow workers started (django-q2 cluster, pid {pid}).")

    def log_action(self, protocol, action, details):
        """Daphne's request lines, but for the workbench's own traffic (admin pages,
        static files, the live websocket), which shows only with the logger
        ``django.channels.server`` at DEBUG: the console is for your steps' logs."""
        if workbench_traffic(protocol, details) and not server_log.isEnabledFor(logging.DEBUG):
            return
        super().log_action(protocol, action, details)


def workbench_traffic(protocol, details):
    """A websocket, or a request for an admin page or a static file that did not fail."""
    if protocol != "http":
        return True
    if details.get("status", 0) >= 500:
        return False
    prefixes = (settings.STATIC_URL and f"/{settings.STATIC_URL.lstrip('/')}", admin_root())
    return details.get("path", "").startswith(tuple(p for p in prefixes if p))


def admin_root():
    try:
        return reverse("admin:index")
    except NoReverseMatch:
        return None


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
