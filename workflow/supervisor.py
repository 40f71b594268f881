"""Keeps a django-q2 cluster that can still take work, restarting it when a member dies.

django-q2 workers share one multiprocessing queue whose read lock is held by the
worker waiting for the next job. A worker killed while it holds that lock (SIGKILL,
the OOM killer) leaves the lock held for ever: the sentinel starts a new worker, but
no worker can take a job again and the cluster silently stops (django-q2 issue #23).
Here, handler threads leave a worker idle in that wait nearly all the time, so any
killed worker would do it.

So when a process of the cluster dies, the supervisor replaces the whole cluster:
live workers get SIGTERM (their running handlers get ``SHUTDOWN_GRACE`` seconds, then
their deliveries are handed back), stragglers are killed, the wake-ups the old
cluster held are cleared so the sweeper sends them again, and a new cluster starts.
The dead worker's own deliveries run again once their visibility timeout passes.
"""

import logging
import signal

import psutil

from .conf import workflow_settings
from .models import Delivery

logger = logging.getLogger("workflow")


class Supervisor:
    def __init__(self, make_cluster, on_start=None):
        self.make_cluster = make_cluster
        self.on_start = on_start  # called after each start (e.g. to set signal handlers)
        self.cluster = None
        self.members = set()
        self.restarts = 0

    def start(self):
        self.cluster = self.make_cluster()
        if self.on_start:
            self.on_start()
        self.cluster.start()
        self.members = {p.pid for p in self._children()}
        return self.cluster

    def _children(self):
        try:
            return psutil.Process(self.cluster.sentinel.pid).children(recursive=True)
        except psutil.Error:
            return []

    def lost_members(self):
        """Pids of cluster processes that died since the cluster started."""
        alive = {p.pid for p in self._children() if _status(p) not in (None, psutil.STATUS_ZOMBIE)}
        return self.members - alive

    def restart(self, lost):
        logger.error(
            "Cluster process %s died; restarting the cluster (a worker killed while "
            "waiting for work locks django-q2's task queue for good)",
            ", ".join(map(str, sorted(lost))),
        )
        self.terminate()
        cleared = clear_wake_ups()
        self.restarts += 1
        self.start()
        logger.warning("Cluster restarted; %s pending deliveries are woken again", cleared)

    def terminate(self):
        """SIGTERM the sentinel's processes, kill what is left after the grace period.

        The sentinel is frozen first (SIGSTOP): otherwise it could start a new worker
        after the list of its processes was taken, and that worker would outlive it.
        """
        sentinel = psutil.Process(self.cluster.sentinel.pid)
        _signal(sentinel, signal.SIGSTOP)
        members = self._children()
        for process in members:
            _signal(process, signal.SIGTERM)
        grace = workflow_settings.SHUTDOWN_GRACE + 1.5
        _, alive = psutil.wait_procs(members, timeout=grace)
        for process in [*alive, sentinel]:
            _signal(process, signal.SIGKILL)
        self.cluster.sentinel.join(timeout=5)


def clear_wake_ups():
    """Pending deliveries marked as carried by a job: the jobs may have died with the
    cluster, so the sweeper sends them again (a second wake-up does no harm)."""
    return Delivery.objects.filter(
        status=Delivery.Status.PENDING, enqueued_at__isnull=False
    ).update(enqueued_at=None)


def _status(process):
    try:
        return process.status()
    except psutil.Error:
        return None


def _signal(process, signum):
    try:
        process.send_signal(signum)
    except psutil.Error:
        pass
