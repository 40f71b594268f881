"""Running a page's commands as its reader would (docs/tutorial.md, docs/bookings.md):
in a copy of the project with a database of its own, ``python`` the project's virtual
environment's, shell variables carried from one command to the next, and ``python
manage.py runserver`` kept running (in the background, as in its own terminal) while
the later commands talk to it, on a free port instead of 8000 (the commands'
``localhost:8000`` follow it).
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from bench.stack import Stack
from tests.docs.markdown import unmatched

ROOT = Path(__file__).resolve().parents[2]
RUNSERVER = "python manage.py runserver"
LEFT_OUT = (".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", "staticfiles")
LEFT_OUT += ("test-artifacts", "node_modules", "db.sqlite3*", "*.log")


def copy_project(target):
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(*LEFT_OUT))
    return target


def reader_env(project):
    """The reader's shell: the project's venv first on PATH, its own database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "WORKFLOW_"))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["DATABASE_URL"] = f"sqlite:///{project / 'db.sqlite3'}"
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return env


class Reader:
    """Runs the tutorial's commands one by one in ``project``, keeping shell variables."""

    def __init__(self, project, env):
        self.project = project
        self.env = env
        self.variables = project.parent / "variables.sh"
        self.server = None

    def run(self, text, timeout=180):
        script = (
            f"set -a; [ -f {self.variables} ] && . {self.variables}\n{text}\n"
            f"status=$?; export -p > {self.variables}; exit $status\n"
        )
        return subprocess.run(
            ["bash", "-c", script],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_server(self, text):
        """``python manage.py runserver``, on a free port, as in a terminal of its own."""
        self.server = Stack(self.project.parent / "server", env=self.env)
        port_args = text.removeprefix(RUNSERVER) + f" 127.0.0.1:{self.server.port}"
        with open(self.server.log_path, "ab") as log:
            self.server.process = subprocess.Popen(
                ["bash", "-c", f"exec {RUNSERVER}{port_args}"],
                cwd=self.project,
                env=self.server.env,
                start_new_session=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.server.wait_ready()
        return self.server.log()

    def with_port(self, text):
        if self.server is None:
            return text
        return text.replace(":8000", f":{self.server.port}")


def run_commands(reader, steps):
    """Run each of a page's commands in turn, as its reader would: each exits 0 (1 when
    the page shows it refused) and prints what the page shows under it."""
    for step in steps:
        text = reader.with_port(step.text)
        if step.text.startswith(RUNSERVER):
            output, code = reader.start_server(step.text), 0
        else:
            done = reader.run(text)
            output, code = done.stdout + done.stderr, done.returncode
        where = f"\n$ {text}\n{output}"
        refused = any(line.startswith("CommandError: ") for line in step.expected)
        assert code == (1 if refused else 0), f"exited {code}:{where}"
        expected = [reader.with_port(line) for line in step.expected]
        missing = unmatched(expected, output)
        assert missing is None, f"the page shows {missing!r}, not printed:{where}"
