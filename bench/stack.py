"""Start and stop the project as the README does, for benchmarks and end-to-end tests.

    with Stack(tmpdir) as stack:          # migrate, then `manage.py runserver`
        stack.post("/users/register", {...})

Each stack gets its own SQLite file (through DATABASE_URL) and a free port; stopping
it sends SIGINT to runserver's process group, as Ctrl-C in a terminal does.
"""

import hashlib
import importlib.metadata
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_int():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Stack:
    def __init__(self, workdir, *, env=None, reload=True, database_url=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.reload = reload
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url or f"sqlite:///{self.workdir / 'db.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process = None
        self.log_path = self.workdir / "runserver.log"
        self.session = requests.Session()

    # Processes ---------------------------------------------------------------

    def manage(self, *args, check=True, **kwargs):
        return subprocess.run(
            [sys.executable, MANAGE, *args],
            cwd=ROOT,
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
            **kwargs,
        )

    def spawn(self, *args, log_name, argv=None):
        """A long-running ``manage.py`` command (or ``argv``) in its own process group."""
        return subprocess.Popen(
            argv or [sys.executable, MANAGE, *args],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            preexec_fn=default_int,
            stdout=open(self.workdir / log_name, "ab"),
            stderr=subprocess.STDOUT,
        )

    def daphne(self, log_name="daphne.log", timeout=30):
        """A web server as in production, with no workers beside it (run ``qcluster``):
        ``daphne -b 127.0.0.1 -p PORT config.asgi:application``, once it answers."""
        port = free_port()
        argv = [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port)]
        process = self.spawn(log_name=log_name, argv=[*argv, "config.asgi:application"])
        server = WebServer(process, f"http://127.0.0.1:{port}", self.workdir / log_name)
        server.wait_ready(timeout)
        return server

    def start(self, timeout=90):
        self.migrate()
        args = ["runserver", f"127.0.0.1:{self.port}"]
        if not self.reload:
            args.append("--noreload")
        self.process = self.spawn(*args, log_name="runserver.log")
        self.wait_ready(timeout)
        return self

    def migrate(self):
        """``manage.py migrate``; a new SQLite database is instead a copy of one this
        machine migrated before with the same migrations and settings (``template``):
        the same tables in a tenth of the time, for the many stacks the tests start."""
        url = self.env["DATABASE_URL"]
        path = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
        if path is None or path.exists():
            self.manage("migrate", "--noinput", "-v0")
            return
        shutil.copyfile(self.template(), path)

    def template(self):
        """A migrated SQLite database for this stack's settings, made once per machine
        (in the temporary folder, named by a hash of every migration and setting that
        decides the tables)."""
        key = hashlib.sha256()
        for name in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH"):
            key.update(f"{name}={self.env.get(name, '')}\n".encode())
        for package in ("django", "django-q2"):
            key.update(f"{package}={importlib.metadata.version(package)}\n".encode())
        folders = [p for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")]
        for migration in sorted(m for f in folders for m in f.glob("**/migrations/*.py")):
            key.update(str(migration.relative_to(ROOT)).encode() + migration.read_bytes())
        template = Path(tempfile.gettempdir()) / f"workflow-stack-{key.hexdigest()[:16]}.sqlite3"
        if not template.exists():
            making = template.with_suffix(f".{os.getpid()}.making")
            env = {**self.env, "DATABASE_URL": f"sqlite:///{making}"}
            subprocess.run(
                [sys.executable, MANAGE, "migrate", "--noinput", "-v0"],
                cwd=ROOT, env=env, check=True, capture_output=True,
            )  # fmt: skip
            with sqlite3.connect(making) as conn:  # everything in the file, none in the WAL
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            os.replace(making, template)
            for suffix in ("-wal", "-shm", "-writer"):
                Path(f"{making}{suffix}").unlink(missing_ok=True)
        return template

    def wait_ready(self, timeout=90):
        """Until runserver answers and its cluster has all its processes (on a loaded
        machine, as when the tests run two at a time, that can take tens of seconds)."""
        deadline = time.monotonic() + timeout
        answered = False
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"runserver exited:\n{self.log()}")
            try:
                self.session.get(self.base + "/users/-/status", timeout=1)
                answered = True
                if self.cluster_ready() or not self.expects_workers():
                    return
            except (requests.ConnectionError, requests.Timeout):
                # not listening yet, or listening but its first answer (URLconf,
                # apps, the channel layer) is slower than a second on a busy machine
                pass
            time.sleep(0.1)
        raise TimeoutError(
            f"runserver not ready in {timeout} s: answered {answered}, cluster processes "
            f"{len(self.cluster_processes())} of {self.expected_cluster()}; "
            f"its log ends:\n{self.log()[-3000:]}"
        )

    def cluster_ready(self):
        """Whether the embedded cluster has all its processes: its main one, django-q2's
        sentinel, pusher and monitor, and a worker per WORKFLOW_WORKERS (or core)."""
        return len(self.cluster_processes()) >= self.expected_cluster()

    def expected_cluster(self):
        workers = int(self.env.get("WORKFLOW_WORKERS") or 0) or os.cpu_count() or 2
        return workers + 4

    def expects_workers(self):
        return self.env.get("WORKFLOW_EMBEDDED_WORKERS", "1") not in ("0", "false")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def server_processes(self):
        if not self.process:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def cluster_mains(self):
        """The main process of each cluster runserver started (in a session of its own)."""
        runservers = set()
        for proc in self.server_processes():
            try:
                if "runserver" in proc.cmdline():
                    runservers.add(proc.pid)
            except psutil.Error:
                pass
        return [
            proc
            for proc in psutil.process_iter(["cmdline", "ppid"])
            if "qcluster" in (proc.info["cmdline"] or []) and proc.info["ppid"] in runservers
        ]

    def cluster_processes(self):
        """The embedded cluster and its children."""
        found = []
        for main in self.cluster_mains():
            try:
                found += [main, *main.children(recursive=True)]
            except psutil.Error:
                pass
        return found

    def all_processes(self):
        procs = self.server_processes() + self.cluster_processes()
        return list({p.pid: p for p in procs}.values())

    def memory(self):
        """(RSS sum, PSS sum) in MB over runserver and its workers."""
        rss = pss = 0
        for proc in self.all_processes():
            try:
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            rss += info.rss
            pss += info.pss
        return rss / 2**20, pss / 2**20

    def interrupt(self, timeout=15):
        """Ctrl-C: SIGINT to runserver's process group; returns seconds until all exited."""
        procs = self.all_processes()
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        gone, alive = psutil.wait_procs(procs, timeout=timeout)
        elapsed = time.monotonic() - started
        for proc in alive:
            proc.kill()
        self.process = None
        return elapsed, alive

    def stop(self):
        if self.process and self.process.poll() is None:
            self.interrupt()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def query(self, sql, params=()):
        """Rows from the stack's database (SQLite or PostgreSQL), read beside the server.

        Write ``?`` placeholders and quote ``"group"``: the SQL works on both.
        """
        url = self.env["DATABASE_URL"]
        if url.startswith(("postgres://", "postgresql://")):
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        path = url.removeprefix("sqlite:///")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    # HTTP --------------------------------------------------------------------

    def post(self, path, json=None, **kwargs):
        return self.session.post(self.base + path, json=json, timeout=30, **kwargs)

    def get(self, path, **kwargs):
        return self.session.get(self.base + path, timeout=30, **kwargs)


class WebServer:
    """One daphne process started by ``Stack.daphne()``: HTTP like ``Stack``'s, and stop()."""

    def __init__(self, process, base, log_path):
        self.process = process
        self.base = base
        self.log_path = log_path
        self.session = requests.Session()

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.log()}")
            try:
                self.session.get(self.base + "/users/-/status", timeout=1)
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        raise TimeoutError(f"daphne did not answer in {timeout}s:\n{self.log()}")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout=15):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def post(self, path, json=None, **kwargs):
        return self.session.post(self.base + path, json=json, timeout=30, **kwargs)

    def get(self, path, **kwargs):
        return self.session.get(self.base + path, timeout=30, **kwargs)
