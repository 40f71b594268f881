"""``manage.py qcluster``: django-q2's cluster, supervised, plus the workflow ticker.

Run it on as many hosts as you need. It stops on SIGTERM or SIGINT: running
handlers get ``SHUTDOWN_GRACE`` seconds, then their deliveries are handed back; if
the cluster has not stopped a moment after that, its processes are killed (their
deliveries run again once their leases run out). Every process of the cluster dies
with its parent, so none outlives this command.
"""

import gc
import os
import signal
import threading
import time

import psutil
from django.conf import settings

from workflow import forking, processes, queue
from workflow.conf import workflow_settings
from workflow.memory import return_large_blocks
from workflow.supervisor import Supervisor
from workflow.ticker import Ticker

PARENT_ENV = "WORKFLOW_PARENT_PID"


class Command(queue.QClusterCommand):
    help = "Starts the django-q2 cluster and the workflow ticker (cron, sweeper)."

    def handle(self, *args, **options):
        return_large_blocks()
        self.stopping = threading.Event()
        self.watch_parent()
        forking.install()  # each forked process opens its own database connections
        processes.die_with_parents()  # no process of the cluster outlives its parent
        settings.SECRET_KEY  # noqa: B018  (django-q2 signs jobs with it)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        gc.collect()
        gc.freeze()
        self.supervisor = Supervisor(queue.cluster_class(), on_start=self.handle_signals)
        try:
            self.run(options)
        finally:
            self.supervisor.close()

    def run(self, options):
        self.cluster = self.supervisor.start()
        if options.get("run_once"):
            self.cluster.stop()
            return
        ticker = Ticker().start()
        while not self.stopping.is_set() and self.cluster.sentinel.is_alive():
            lost = self.supervisor.lost_members()
            if lost and not self.stopping.is_set():
                # No other thread runs while the new cluster forks: a lock one of them
                # held at the fork would stay held in the children.
                ticker.stop()
                self.supervisor.restart(lost)
                self.cluster = self.supervisor.cluster
                ticker.start()
            self.stopping.wait(0.2)
        ticker.stop()
        self.stop_cluster()

    def handle_signals(self):
        """Ours, not django-q2's (Cluster() sets its own): stop through stop_cluster()."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def request_stop(self, signum, frame):
        self.stopping.set()

    def stop_cluster(self):
        deadline = workflow_settings.SHUTDOWN_GRACE + 1.5
        children = psutil.Process().children(recursive=True)
        killer = threading.Timer(deadline, self.kill, args=(children,))
        killer.daemon = True
        killer.start()
        self.cluster.stop()
        killer.cancel()

    def kill(self, processes):
        for process in processes:
            try:
                process.kill()
            except psutil.Error:
                pass
        self.stderr.write("Cluster did not stop in time; its processes were killed.")
        os._exit(1)

    def watch_parent(self):
        """Stop, as on SIGTERM, when the process that started us (runserver) is gone: at
        once on Linux (the kernel sends the signal), else within half a second."""
        expected = os.environ.get(PARENT_ENV)
        if not expected:
            return
        processes.stop_with_parent(int(expected))

        def watch():
            while not self.stopping.is_set():
                if str(os.getppid()) != expected:
                    self.stopping.set()
                time.sleep(0.5)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
