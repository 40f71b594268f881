"""A doorbell for the ORM broker's pusher: new jobs reach it at once, not at its next poll.

django-q2's ORM broker has no way to wait for a job: its pusher looks at the queue
table, and when it finds none sleeps ``poll`` seconds (0.05) before it looks again, so
a job waits 25 ms on average before a worker even sees it (Redis' broker blocks on the
list instead and sees a job at once). Here the pusher waits on a Unix datagram socket
of its own instead of sleeping, for at most the same ``poll``; whoever sends jobs rings
every such socket once they are committed. A ring is a hint, one small datagram: lost,
dropped on a full socket, or sent from another machine (which has no socket to ring),
the pusher still looks at its next poll, as before.

The sockets live in a directory of the machine's temporary folder named after the
database (``workflow-doorbell-<hash>``), so the processes of one project on one database
find each other, and those of another project or database never ring them. A process
removes its socket when it exits; one left by a process that was killed is removed by
the next ring that finds nobody behind it.
"""

import hashlib
import logging
import os
import select
import socket
import tempfile
import threading
import uuid
from multiprocessing.util import Finalize
from pathlib import Path

from django.db import connections

logger = logging.getLogger("workflow")
RING = b"!"


def folder(alias="default"):
    """The doorbell folder of the database ``alias`` (created on first use)."""
    settings = connections[alias].settings_dict
    identity = "|".join(str(settings.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME"))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"workflow-doorbell-{digest}"


class Listener:
    """One process's doorbell: ``wait(timeout)`` returns when rung, or after ``timeout``."""

    def __init__(self, directory):
        directory.mkdir(mode=0o700, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(self.path))
        self.socket.setblocking(False)
        self.pid = os.getpid()

    def wait(self, timeout):
        """Whether it was rung within ``timeout`` seconds (every ring waiting is spent)."""
        ready, _, _ = select.select([self.socket], [], [], timeout)
        rung = False
        while ready:
            try:
                self.socket.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            rung = True
        return rung

    def close(self):
        """Close and remove the socket (and its folder, if no other is left in it)."""
        self.socket.close()
        self.path.unlink(missing_ok=True)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass  # another process's socket is there


_listeners: dict[int, Listener] = {}
_lock = threading.Lock()


def listener(alias="default"):
    """This process's listener (a forked process makes its own); None if the machine
    has no Unix sockets or the folder cannot be used: then the pusher only polls."""
    pid = os.getpid()
    with _lock:
        if pid not in _listeners:
            _listeners.clear()
            try:
                _listeners[pid] = Listener(folder(alias))
            except (OSError, AttributeError) as exc:  # AttributeError: no socket.AF_UNIX
                logger.warning("No doorbell for the pusher (%s); it polls", exc)
                _listeners[pid] = None
            else:  # removed when the process exits, a multiprocessing child too
                Finalize(_listeners[pid], _listeners[pid].close, exitpriority=0)
        return _listeners[pid]


def wait(timeout, alias="default"):
    """Wait for a ring, at most ``timeout`` seconds (a plain sleep without a listener)."""
    found = listener(alias)
    if found is None:
        select.select([], [], [], timeout)
        return False
    return found.wait(timeout)


_sender = None


def ring(alias="default"):
    """Ring every listener of the database ``alias``: jobs were just committed."""
    global _sender
    directory = folder(alias)
    try:
        paths = [entry.path for entry in os.scandir(directory) if entry.name.endswith(".sock")]
    except OSError:
        return 0  # no pusher on this machine yet (or not ours to ring)
    if not paths:
        return 0
    if _sender is None:
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender.setblocking(False)
    rung = 0
    for path in paths:
        try:
            _sender.sendto(RING, path)
            rung += 1
        except (BlockingIOError, InterruptedError):
            rung += 1  # its socket is full of rings already: it will look
        except (ConnectionRefusedError, FileNotFoundError):
            Path(path).unlink(missing_ok=True)  # nobody behind it: a process that died
        except OSError:
            pass  # a hint only
    return rung
