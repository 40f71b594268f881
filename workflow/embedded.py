"""The cluster runserver starts beside the web server, and stops with it.

It is ``manage.py qcluster`` in a child process of its own session: no fork of the
web server's threads, one way to stop it (SIGTERM), and a watchdog in the child that
stops it should runserver vanish without a word. runserver's autoreloader restarts
the web server process on a code change; the cluster stops with that process and
starts again with the new one.
"""

import atexit
import os
import signal
import subprocess
import sys

from .management.commands.qcluster import PARENT_ENV

STOP_TIMEOUT = 5


class EmbeddedCluster:
    def __init__(self, manage_py=None):
        self.manage_py = manage_py or os.path.abspath(sys.argv[0])
        self.process = None

    def start(self):
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        env.pop("RUN_MAIN", None)
        self.process = subprocess.Popen(
            [sys.executable, self.manage_py, "qcluster", "--skip-checks"],
            env=env,
            start_new_session=True,
        )
        atexit.register(self.stop)
        return self.process.pid

    def stop(self):
        """SIGTERM, then wait; killed outright after ``STOP_TIMEOUT`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
