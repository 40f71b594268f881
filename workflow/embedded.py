"""The cluster runserver starts beside the web server, kept running, and stopped with it.

It is ``manage.py qcluster`` in a child process of its own session: no fork of the
web server's threads, one way to stop it (SIGTERM), and in the child a stop of its own
should runserver vanish without a word (the kernel's parent-death signal, and a watch).
If the cluster dies (killed, out of memory), runserver starts a new one and says so,
at most ``RESTARTS`` times in ``RESTART_WINDOW`` seconds; after that it says how to
find the cause and leaves it stopped. runserver's autoreloader restarts the web server
process on a code change; the cluster stops with that process and starts again with
the new one.
"""

import atexit
import os
import signal
import subprocess
import sys
import threading
import time

from .management.commands.qcluster import PARENT_ENV

STOP_TIMEOUT = 5
RESTARTS = 3
RESTART_WINDOW = 60.0
POLL = 0.5


class EmbeddedCluster:
    # The cluster this process started, until it is stopped (for pages that say whether
    # workers run beside this server).
    current = None

    @classmethod
    def running_here(cls):
        """Whether a cluster this process started (runserver's web server) runs now."""
        process = cls.current and cls.current.process
        return process is not None and process.poll() is None

    def __init__(self, manage_py=None, say=None):
        self.manage_py = manage_py or os.path.abspath(sys.argv[0])
        self.say = say or (lambda line: print(line, flush=True))
        self.process = None
        self.stopped = threading.Event()
        self.lock = threading.Lock()  # a restart and stop() do not cross
        self.restarted_at = []  # time.monotonic() of each restart

    def start(self):
        self.process = self._spawn()
        EmbeddedCluster.current = self
        atexit.register(self.stop)
        # The cluster's parent-death signal follows the thread that started it: this
        # one (the server's, which lives as long as it does), then the keeper.
        threading.Thread(target=self._keep, name="workflow-cluster-keeper", daemon=True).start()
        return self.process.pid

    def _spawn(self):
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        env.pop("RUN_MAIN", None)
        return subprocess.Popen(
            [sys.executable, self.manage_py, "qcluster", "--skip-checks"],
            env=env,
            start_new_session=True,
        )

    def _keep(self):
        while not self.stopped.wait(POLL):
            with self.lock:
                process = self.process
                if process is not None and process.poll() is not None and not self.stopped.is_set():
                    self._restart(process.returncode)

    def _restart(self, code):
        now = time.monotonic()
        self.restarted_at = [at for at in self.restarted_at if now - at < RESTART_WINDOW]
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        if len(self.restarted_at) >= RESTARTS:
            self.say(
                f"Workflow workers stopped again ({how}), {RESTARTS + 1} times within "
                f"{RESTART_WINDOW:g} s: not starting them again. Their output above says "
                "why; fix it and restart runserver (or run `manage.py qcluster` to see it)."
            )
            self.process = None
            return
        self.restarted_at.append(now)
        self.process = self._spawn()
        self.say(
            f"Workflow workers stopped ({how}); started them again "
            f"(django-q2 cluster, pid {self.process.pid})."
        )

    def stop(self):
        """SIGTERM, then wait; killed outright after ``STOP_TIMEOUT`` seconds."""
        with self.lock:
            self.stopped.set()
            process, self.process = self.process, None
            if EmbeddedCluster.current is self:
                EmbeddedCluster.current = None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
