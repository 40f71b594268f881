"""docs/tutorial.md, run: every command of its ```bash blocks, in order, in a copy of the
project with a database of its own; each must exit 0 and print what the page shows
under it (``# ...`` lines; ``...`` stands for what varies). A command the page shows
refused (a ``# CommandError: ...`` line) must exit 1 instead.

As a reader would: ``python`` is the project's virtual environment's, shell variables
carry from one command to the next, and ``python manage.py runserver`` keeps running
(started in the background, as in its own terminal) while the later commands talk to
it. The only change made to the page's commands is the port: the server gets a free one
instead of 8000 (another may be in use), and the commands' ``localhost:8000`` follow it.
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.stack import Stack
from tests.docs.markdown import commands, unmatched

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
RUNSERVER = "python manage.py runserver"
STARTSTEP = "python manage.py startstep users NotifyAdmin "
USERS_TESTS = "python -m pytest tests/users "
# The project's tests that read its whole registry or run `check` on it (the others
# declare their own steps): after "Add a step" they still pass, testing the shipped steps
# (tests/shipped.py) or any step added since. tests/test_fuzz.py, which fuzzes every API
# step, is left out for its time (15 s); NotifyAdmin is no API step.
WHOLE_REGISTRY_TESTS = (
    "tests/workflow/test_checks.py",
    "tests/test_production_settings.py",
    "tests/workflow/test_graph.py",
    "tests/workflow/test_commands_flows.py",
    "tests/workflow/test_commands_startstep.py",
    "tests/workflow/test_registry.py",
    "tests/workflow/test_asyncapi.py",
    "tests/workflow/test_openapi.py",
    "tests/workflow/test_payloads.py",
    "tests/workbench/test_pages.py",
    "tests/workbench/test_examples.py",
    "tests/test_home.py",
)
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


@pytest.fixture
def reader(tmp_path):
    project = copy_project(tmp_path / "project")
    running = Reader(project, reader_env(project))
    yield running
    if running.server is not None:
        running.server.stop()


def test_the_tutorials_commands_run_and_print_what_it_shows(reader):
    """Every command, in order; among them, the users app's whole test suite runs after
    "Add a step" wrote NotifyAdmin (no test of the app pins the subscriber list). Then
    the project's tests that read its whole registry or run `check` pass there too."""
    steps = commands(TUTORIAL.read_text())
    assert len(steps) >= 20, "the tutorial's commands were not found"
    texts = [s.text for s in steps]
    assert texts.count(RUNSERVER) == 1
    added = next(i for i, text in enumerate(texts) if text.startswith(STARTSTEP))
    assert any(text.startswith(USERS_TESTS) for text in texts[added + 1 :])
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
        assert missing is None, f"the tutorial shows {missing!r}, not printed:{where}"
    assert (reader.project / "users" / "steps" / "notify_admin_step.py").is_file()
    assert not (ROOT / "users" / "steps" / "notify_admin_step.py").exists()
    done = reader.run(f"python -m pytest -q -p no:cacheprovider {' '.join(WHOLE_REGISTRY_TESTS)}")
    assert done.returncode == 0, f"after Add a step:\n{done.stdout}{done.stderr}"
