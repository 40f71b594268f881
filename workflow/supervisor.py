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

Workers leave a note when they start, so one that dies before the supervisor first
looks is missed all the same. And when the supervisor starts, it ends the leases still
held by processes of this host that are gone (a cluster killed outright, then started
again), so their deliveries run at once rather than when the leases run out.
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
        # Where workers say they started, or retire (processes.announce_*).
        self.notes = tempfile.mkdtemp(prefix="workflow-cluster-")
        os.environ[processes.NOTES_ENV] = self.notes

    def start(self):
        self.cluster = self.make_cluster()
        if self.on_start:
            self.on_start()
        self.cluster.start()
        self.members = self._alive()  # one that died meanwhile left a note: see lost_members
        if not self.restarts:
            self.hand_back_the_gone()
        return self.cluster

    def hand_back_the_gone(self):
        """End the leases held by processes of this host that no longer run."""
        try:
            gone = [w for w in store.claimants(processes.this_host()) if not processes.alive(w)]
        except Exception:
            logger.exception("Could not look for leases of processes gone; they run out")
            return
        for worker in gone:
            self._expire(worker, "Its worker process was gone when the cluster started")

    def _children(self):
        try:
            return psutil.Process(self.cluster.sentinel.pid).children(recursive=True)
        except psutil.Error:
            return []

    def lost_members(self):
        """Pids of cluster processes that died since the last look, or that started and
        died before it (those that retired on purpose are not lost); the processes
        started meanwhile become members."""
        alive = self._alive()
        known = {**processes.births(), **self.members}
        gone = {pid: token for pid, token in known.items() if pid not in alive}
        self.members = alive
        lost = {pid for pid in gone if not processes.forget(pid)}
        for pid in lost:
            self._expire(processes.worker_id(pid, gone[pid]), f"Its worker process ({pid}) died")
        return lost

    def _alive(self):
        """``{pid: start token}`` of the cluster's live processes."""
        alive = {}
        for process in self._children():
            if _status(process) not in (None, psutil.STATUS_ZOMBIE):
                token = self.members.get(process.pid) or _token(process)
                if token:
                    alive[process.pid] = token
        return alive

    def _expire(self, worker, reason):
        """End the leases ``worker`` held: its deliveries are claimable at once."""
        try:
            ids = store.expire_leases(worker, reason)
        except Exception:
            logger.exception("Could not end the leases of %s; they run out", worker)
            return
        if ids:
            logger.warning("%s: %s held deliveries %s; they run again", reason, worker, ids)

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
        processes.clear_notes()  # of the processes just ended

    def close(self):
        shutil.rmtree(self.notes, ignore_errors=True)
        if os.environ.get(processes.NOTES_ENV) == self.notes:
            del os.environ[processes.NOTES_ENV]


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
