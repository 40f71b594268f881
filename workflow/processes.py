"""The processes of a cluster: who a worker is, that none outlives its parent, and how
a worker that retires itself says so.

* A worker's id, ``host:pid/start``, names it in the leases it holds and the runs it
  records; ``start`` (the process's start time) tells it apart from a later process
  with the same pid, so a supervisor can end the leases of the one that died.
* Every process a cluster forks dies with its parent (Linux's ``PR_SET_PDEATHSIG``): a
  sentinel or worker whose parent was killed cannot live on, orphaned, holding leases
  or locks.
* Each worker leaves a note for the supervisor when it starts, so a worker that dies
  before the supervisor first looks is still missed; and a worker that retires itself
  (most of its threads stuck in handlers that timed out) leaves one before it exits, so
  its exit is not taken for a crash.
* A worker exits through Python on SIGTERM (from the supervisor, which then replaces
  the whole cluster), so its handler pool's drain runs and hands back what it holds; a
  worker that retires on its own leaves at its next job instead (``retire``).
"""

import ctypes
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger("workflow")
NOTES_ENV = "WORKFLOW_CLUSTER_NOTES"
PR_SET_PDEATHSIG = 1
_parent: dict[str, int] = {}


def start_token(pid=None):
    """The start time of process ``pid`` (this one by default), as a short token."""
    return f"{int(psutil.Process(pid).create_time() * 100):x}"


def worker_id(pid=None, token=None):
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}/{token or start_token(pid)}"


def _remember_parent():
    _parent["pid"] = os.getpid()


def _on_parent_death(signum):
    """Have the kernel send ``signum`` to this process when its parent dies; False where
    that cannot be had (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _die_with_parent():
    """In a new child: be killed when the process that forked it dies. SIGKILL, since a
    process that inherited a lock held at the fork may never run a handler again."""
    if _on_parent_death(signal.SIGKILL) and os.getppid() != _parent.get("pid", os.getppid()):
        os._exit(1)  # the parent died before the line above took effect


def stop_with_parent(parent_pid):
    """SIGTERM (a graceful stop) to this process when ``parent_pid``, its parent, dies."""
    if _on_parent_death(signal.SIGTERM) and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def die_with_parents():
    """Every process forked from now on, by this one or its children, dies with its
    parent. (The signal follows the forking thread: cluster processes fork from their
    main thread, which lives as long as they do.)"""
    os.register_at_fork(before=_remember_parent, after_in_child=_die_with_parent)


def _notes():
    folder = os.environ.get(NOTES_ENV)
    return Path(folder) if folder else None


def announce_birth():
    """Tell the supervisor that this worker process started (it has an id to end the
    leases of, should it die)."""
    _leave(f"born-{os.getpid()}-{start_token()}")


def announce_retirement(pid=None):
    """Tell the supervisor that process ``pid`` (this one) exits on purpose."""
    _leave(f"retired-{pid or os.getpid()}")


def _leave(name):
    """A note for the supervisor; none if there is no supervisor (or its folder is gone)."""
    if (notes := _notes()) is not None:
        try:
            (notes / name).touch()
        except OSError:
            pass


def births():
    """``{pid: start token}`` of the workers that announced their start."""
    notes = _notes()
    found = {}
    for note in notes.glob("born-*") if notes is not None else ():
        _, pid, token = note.name.split("-", 2)
        found[int(pid)] = token
    return found


def forget(pid):
    """The supervisor saw process ``pid`` go: its notes are done with. True if it had
    announced its retirement."""
    notes = _notes()
    if notes is None:
        return False
    for note in notes.glob(f"born-{pid}-*"):
        note.unlink(missing_ok=True)
    retired = notes / f"retired-{pid}"
    if retired.exists():
        retired.unlink(missing_ok=True)
        return True
    return False


def clear_notes():
    """Forget every note (the cluster that left them was ended)."""
    if (notes := _notes()) is not None:
        for note in notes.iterdir():
            note.unlink(missing_ok=True)


def this_host():
    """The start of the ids of this host's workers."""
    return f"{socket.gethostname()}:"


def alive(worker):
    """True if the worker id ``host:pid/token`` names a live process of this host."""
    host, _, rest = worker.partition(":")
    pid, _, token = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's: not ours to judge
    try:
        return start_token(int(pid)) == token
    except psutil.Error:
        return False


_in_worker: dict[str, Any] = {}


def worker_started(**kwargs):
    """django-q2's ``post_spawn`` receiver, in each new worker process: SIGTERM exits
    through Python (not at once), so the pool's drain runs and hands back what it holds.
    django-q2 itself stops workers with a STOP job; SIGTERM comes from the supervisor."""
    _in_worker["pid"] = os.getpid()
    signal.signal(signal.SIGTERM, _exit)
    announce_birth()  # should it die before the supervisor looks


def _exit(signum, frame):
    raise SystemExit(0)


def retire():
    """Make this worker leave at its next job, the one moment it holds none of django-q2's
    queue locks and has read no half of a job (a signal could strike amid the read and
    leave the queue corrupt for every other worker). Outside a django-q2 worker process
    (its sync mode), nothing: that process is not the pool's."""
    if _in_worker.get("pid") != os.getpid():
        logger.error("Not a django-q2 worker process: it does not retire")
        return
    _in_worker["retiring"] = True


def leave_if_retiring():
    """In a job of a worker that retires: tell the supervisor it is on purpose, and exit
    through Python (the pool's drain hands back what it holds; django-q2 starts a new
    worker)."""
    if _in_worker.get("retiring") and _in_worker.get("pid") == os.getpid():
        announce_retirement()
        raise SystemExit(0)
