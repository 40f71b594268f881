"""End-to-end fixtures: the project started as the README starts it.

`manage.py migrate` then `manage.py runserver` in other processes (daphne and a real
django-q2 cluster beside it) on a SQLite file of their own; the tests talk HTTP and
read the database the server writes.
"""

import json
import time

import pytest

from bench.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """One runserver (with its autoreloader, as in the README) shared by the e2e tests."""
    with Stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def new_stack(tmp_path):
    """A runserver of the test's own, for tests that stop or restart it."""
    made = []

    def start(**kwargs):
        made.append(Stack(tmp_path / f"stack{len(made)}", **kwargs).start())
        return made[-1]

    yield start
    for running in made:
        running.stop()


@pytest.fixture
def scratch(tmp_path):
    """An app ``scratch`` with an empty ``steps/`` folder, outside the project, for a
    stack with ``scratch_env(scratch)``: tests write its step files while runserver
    runs (never the project's own, which other tests' servers watch meanwhile)."""
    steps = tmp_path / "apps" / "scratch" / "steps"
    steps.mkdir(parents=True)
    (steps.parent / "__init__.py").write_text("")
    (steps / "__init__.py").write_text("")
    return steps


def scratch_env(steps):
    return {
        "DJANGO_SETTINGS_MODULE": "tests.e2e.scratch_settings",
        "SCRATCH_DIR": str(steps.parent.parent),
    }


def register(stack, name="Alice Johnson", email=None):
    email = email or f"alice-{time.time_ns()}@example.com"
    body = {"name": name, "email": email, "password": "securepass123"}
    response = stack.post("/users/register", body)
    assert response.status_code == 201, response.text
    return response.json()


def wait_active(stack, user_id, timeout):
    """Poll the status endpoint until the user is active with both flags; the body."""
    deadline = time.monotonic() + timeout
    while True:
        body = stack.get(f"/users/{user_id}/status").json()
        if body["status"] == "active" and body["emailSent"] and body["accountSetup"]:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{user_id} not active after {timeout}s: {body}\n{stack.log()}")
        time.sleep(0.05)


def state(stack, group, key):
    rows = stack.query(
        "SELECT value FROM workflow_stateentry WHERE `group` = ? AND key = ?", (group, key)
    )
    return json.loads(rows[0][0]) if rows else None
