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
import uuid
from pathlib import Path

import pytest

from bench.common import reachable

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not reachable(5432), reason="PostgreSQL is not running on 127.0.0.1:5432")
def test_the_runtime_unit_tests_pass_on_postgresql():
    name = f"workflow_unit_{uuid.uuid4().hex[:8]}"  # pytest-django adds a test_ prefix
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "DATABASE_POOL_SIZE": "0",  # tests that race threads close their connections
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "-m", "store"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and " deselected" in result.stdout, result.stdout[-3000:]
    # The PostgreSQL-only tests ran (they skip on SQLite, in the main run).
    assert "PostgreSQL only" not in result.stdout, result.stdout[-3000:]
