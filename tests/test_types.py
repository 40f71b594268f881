"""mypy, configured in pyproject.toml, over the framework (workflow/), the example app
(users/) and the steps ``manage.py startstep`` writes: no error, with the public API and
every step module fully annotated; and a handler that misuses its ``ctx`` is caught.

One mypy run serves every test here. It works in a folder of the system's temporary
directory kept for this checkout (mypy's cache, and the scaffolded app rewritten at each
run): mypy reports a cached module's errors under the path it had when cached.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from workflow.management.commands.startstep import Command
from workflow.scaffold import render_step
from workflow.scaffold_tests import render_test

ROOT = Path(__file__).resolve().parents[1]
APP = "typedshop"  # the app the scaffolded steps are written to, in a temporary directory
STRICT = "# mypy: disallow-untyped-defs\n"  # as pyproject.toml has it for users/steps
CHECKED = "# mypy: check-untyped-defs\n"  # test functions are not annotated: check them anyway
SCAFFOLDED = [
    ("CreateOrder", "api", {"path": "/orders/:orderId", "emits": ["order.created"]}),
    ("GetOrder", "api", {"method": "GET", "path": "/orders/:orderId"}),
    ("ProcessOrder", "event", {"subscribes": ["order.created"], "emits": ["order.done"]}),
    ("NightlyReport", "cron", {"cron": "0 3 * * *", "emits": ["report.due"]}),
    ("ManualReview", "noop", {"subscribes": ["order.done"]}),
]
NO_OPTIONS = dict.fromkeys(["subscribes", "emits", "flow", "path", "method", "cron", "description"])
# A handler with three mistakes an editor or mypy should catch (marked with the
# error code mypy gives).
MISTAKES = """\
from typing import Any

from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(name="Mistaken", subscribes=["order.created"], emits=["order.done"])


def handler(input: dict[str, Any], ctx: Context) -> None:
    ctx.emit(1, input)  # arg-type
    ctx.state.set("orders", input["orderId"])  # call-arg
    ctx.logger.inform("Done")  # attr-defined
"""
ERROR = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$", re.M)


def write_scaffolded_app(root):
    """The steps and tests startstep writes (one step per type) as an app in ``root``."""
    app = root / APP
    shutil.rmtree(app, ignore_errors=True)
    for folder in (app / "steps", app / "tests"):
        folder.mkdir(parents=True)
    (app / "__init__.py").touch()
    (app / "tests" / "__init__.py").touch()
    for name, step_type, options in SCAFFOLDED:
        spec = Command().spec(APP, name, step_type, {**NO_OPTIONS, **options})
        step_file = app / "steps" / f"{spec.snake}_step.py"
        step_file.write_text(STRICT + render_step(spec))
        test_file = app / "tests" / f"test_{spec.snake}_step.py"
        test_file.write_text(CHECKED + render_test(spec, f"{APP}/steps/{step_file.name}"))
    (app / "steps" / "mistaken_step.py").write_text(STRICT + MISTAKES)
    return app


def work_dir():
    """This checkout's folder for mypy, in the temporary directory."""
    key = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"workflow-mypy-{key}"


@pytest.fixture(scope="module")
def mypy():
    """One mypy run over workflow/, users/ and the scaffolded app: (app, its output)."""
    root = work_dir() / "src"
    app = write_scaffolded_app(root)
    env = {**os.environ, "MYPYPATH": str(root)}
    command = [sys.executable, "-m", "mypy", "--cache-dir", str(work_dir() / "cache")]
    done = subprocess.run(
        [*command, "workflow", "users", str(app)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode in (0, 1), f"mypy could not run:\n{done.stdout}{done.stderr}"
    return app, done.stdout


def errors(output, *, in_file=None, outside=None):
    """mypy's errors (line, code, message) in the file ``in_file``, or outside ``outside``."""
    found = []
    for match in ERROR.finditer(output):
        path = Path(match["file"]).resolve()
        if (in_file is None or path == in_file.resolve()) and (
            outside is None or path != outside.resolve()
        ):
            found.append((int(match["line"]), match["code"], match[0]))
    return found


def test_mypy_checks_every_module_and_finds_no_error_but_the_mistakes(mypy):
    """mypy checked every module of workflow/, users/ and the scaffolded app (steps of
    each type and their tests), and every error it reports is in the mistaken handler."""
    app, output = mypy
    mistaken = app / "steps" / "mistaken_step.py"
    assert errors(output, outside=mistaken) == [], output
    modules = [p for top in (ROOT / "workflow", ROOT / "users", app) for p in top.rglob("*.py")]
    assert len(list(app.rglob("*_step.py"))) == 2 * len(SCAFFOLDED) + 1
    assert re.search(rf"\b{len(modules)} source files", output), output


def test_mypy_catches_a_handler_that_misuses_its_context(mypy):
    """ctx.emit(1, ...), ctx.state.set without a value and a misspelt logger method are
    each an error on their own line."""
    app, output = mypy
    mistaken = app / "steps" / "mistaken_step.py"
    lines = (STRICT + MISTAKES).splitlines()
    expected = {(n, line.rsplit("# ", 1)[1]) for n, line in enumerate(lines, 1) if "# " in line}
    expected -= {(1, "mypy: disallow-untyped-defs")}
    found = {(line, code) for line, code, _ in errors(output, in_file=mistaken)}
    assert found == expected, output
