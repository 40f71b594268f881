"""The store's unit tests again on PostgreSQL, where emit and claim are single
statements of their own (workflow/store/postgresql.py) and SQLite's ORM path is not taken.

Runs the tests marked ``store`` (``pytest -m store``: every module that exercises the
delivery store says so with its ``pytestmark``) in a child process with DATABASE_URL
pointing at this machine's PostgreSQL (127.0.0.1:5432), which `.ci/run` starts if it is
down; pytest-django makes and drops a test database of its own. Skips where PostgreSQL
cannot be had.
"""

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from bench.common import reachable

ROOT = Path(__file__).resolve().parent.parent


_run: dict = {}  # the child pytest and its output, once started


def start():
    """Start the run on PostgreSQL, once. ``tests/conftest.py`` starts it with the session
    when this test is among those to run, so its 45 s or so go by beside the rest of the
    suite; the test then waits for its end."""
    if "process" in _run or not reachable(5432):
        return
    name = f"workflow_unit_{uuid.uuid4().hex[:8]}"  # pytest-django adds a test_ prefix
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "DATABASE_POOL_SIZE": "0",  # tests that race threads close their connections
    }
    _run["output"] = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read by the test)
    _run["process"] = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "-m", "store"],
        cwd=ROOT,
        env=env,
        stdout=_run["output"],
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop():
    """End a run still going (the session ended first: -x, Ctrl-C)."""
    if "process" in _run and _run["process"].poll() is None:
        _run["process"].kill()
        _run["process"].wait()


@pytest.mark.skipif(not reachable(5432), reason="PostgreSQL is not running on 127.0.0.1:5432")
def test_the_runtime_unit_tests_pass_on_postgresql():
    start()
    process, output = _run["process"], _run["output"]
    try:
        process.wait(timeout=600)
    finally:
        stop()
    output.seek(0)
    stdout = output.read()
    assert process.returncode == 0, stdout[-9000:]
    assert " passed" in stdout and " deselected" in stdout, stdout[-3000:]
    # The PostgreSQL-only tests ran (they skip on SQLite, in the main run).
    assert "PostgreSQL only" not in stdout, stdout[-3000:]
