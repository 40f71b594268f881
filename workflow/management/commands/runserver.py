"""``manage.py runserver``: daphne's ASGI development server, with the workers beside it.

One command, one terminal: the web server and a django-q2 cluster (with the workflow
ticker). Ctrl-C stops both; a code change reloads both. ``WORKFLOW["EMBEDDED_WORKERS"]
= False`` leaves the workers to a separate ``manage.py qcluster``.
"""

from daphne.management.commands.runserver import Command as DaphneRunserver

from workflow.conf import workflow_settings
from workflow.embedded import EmbeddedCluster
from workflow.memory import return_large_blocks


class Command(DaphneRunserver):
    help = "Starts the ASGI development server and, beside it, the workflow workers."

    def inner_run(self, *args, **options):
        return_large_blocks()
        if workflow_settings.EMBEDDED_WORKERS and options.get("use_asgi", True):
            self.cluster = EmbeddedCluster()
            pid = self.cluster.start()
            self.stdout.write(f"Workflow workers started (django-q2 cluster, pid {pid}).")
        try:
            return super().inner_run(*args, **options)
        finally:
            if getattr(self, "cluster", None):
                self.cluster.stop()
