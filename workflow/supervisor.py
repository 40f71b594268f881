"""Keeps a django-q2 cluster that can still take work, restarting it when a member dies.

django-q2 workers share one multiprocessing queue whose read lock is held by the
worker waiting for the next job. A worker killed while it holds that lock (SIGKILL,
the OOM killer) leaves the lock held for ever: the sentinel starts a new worker, but
no worker can take a job again and the cluster silently stops (django-q2 issue #23).
Here, handler threads leave a worker idle in that wait nearly all the time, so any
killed worker would do it.

So when a process of the cluster dies, the supervisor first ends the leases the dead
process held (its deliveries run again at once, that attempt counted as failed), then
replaces the whole cluster: live workers get SIGTERM (their running handlers get
``SHUTDOWN_GRACE`` seconds, then their deliveries are handed back), stragglers are
killed, the wake-ups the old cluster held are cleared so the sweeper sends them again,
and a new cluster starts. A worker that retires on purpose (``processes``) exits
through Python, releasing its locks; the sentinel replaces it, and nothing else changes.
"""

import logging
import os
import shutil
import signal
import tempfile

import psutil

from . import processes
from .conf import workflow_settings
from .store import store

logger = logging.getLogger("workflow")


class Supervisor:
    def __init__(self, make_cluster, on_start=None):
        self.make_cluster = make_cluster
        self.on_start = on_start  # called after each start (e.g. to set signal handlers)
        self.cluster = None
        self.members = {}  # pid -> start token, of every live process of the cluster
        self.restarts = 0
        # Where workers that retire say so (processes.announce_retirement).
        self.notes = tempfile.mkdtemp(prefix="workflow-cluster-")
        os.environ[processes.RETIRING_ENV] = self.notes

    def start(self):
        self.cluster = self.make_cluster()
        if self.on_start:
            self.on_start()
        self.cluster.start()
        self.members = {}
        self.lost_members()  # adopts the new processes
        return self.cluster

    def _children(self):
        try:
            return psutil.Process(self.cluster.sentinel.pid).children(recursive=True)
        except psutil.Error:
            return []

    def lost_members(self):
        """Pids of cluster processes that died since the last look (those that retired on
        purpose are not lost); processes started meanwhile become members."""
        alive = {}
        for process in self._children():
            if _status(process) not in (None, psutil.STATUS_ZOMBIE):
                token = self.members.get(process.pid) or _token(process)
                if token:
                    alive[process.pid] = token
        gone = {pid: token for pid, token in self.members.items() if pid not in alive}
        self.members = alive
        lost = {pid for pid in gone if not processes.retired(pid)}
        for pid in lost:
            self._hand_back(pid, gone[pid])
        return lost

    def _hand_back(self, pid, token):
        """End the leases process ``pid`` held: its deliveries are claimable at once."""
        reason = f"Its worker process ({pid}) died"
        try:
            ids = store.expire_leases(processes.worker_id(pid, token), reason)
        except Exception:
            logger.exception("Could not end the leases of process %s; they run out", pid)
            return
        if ids:
            logger.warning("Process %s died holding deliveries %s: they run again", pid, ids)

    def restart(self, lost):
        logger.error(
            "Cluster process %s died; restarting the cluster (a worker killed while "
            "waiting for work locks django-q2's task queue for good)",
            ", ".join(map(str, sorted(lost))),
        )
        self.terminate()
        cleared = store.unmark_all()
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

    def close(self):
        shutil.rmtree(self.notes, ignore_errors=True)


def _token(process):
    try:
        return processes.start_token(process.pid)
    except psutil.Error:
        return None


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
