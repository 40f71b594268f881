"""runserver follows the step files as a user edits them: a new step is picked up, a
broken one stops the server with the fix to make, and fixing or removing it brings the
server and its workers back, with no restart by hand."""

import time

import pytest
import requests

from tests.e2e.conftest import register, scratch_env, wait_active
from tests.e2e.probing import wait_for

pytestmark = pytest.mark.e2e

AUDIT = """
from workflow.steps import EventStep

config = EventStep(name="AuditSignup", subscribes=["user.registered"], flows=["user-registration"])


def handler(input, ctx):
    ctx.state.set("audit", input["userId"], "{version}")
"""


def audited(stack, user_id):
    rows = stack.query(
        "SELECT value FROM workflow_stateentry WHERE `group` = 'audit' AND key = ?", (user_id,)
    )
    return rows[0][0].strip('"') if rows else None


def answers(stack):
    try:
        return requests.get(stack.base + "/users/-/status", timeout=1).status_code == 404
    except requests.RequestException:
        return False


def reloaded(stack, times):
    """The server reloaded ``times`` times since it started, and answers again."""
    return lambda: stack.log().count("Watching for file changes") == times + 1 and answers(stack)


def save(path, text):
    """Write ``path`` the way an editor saves, a moment after the reloader's last look
    (it compares modification times once a second)."""
    time.sleep(1.2)
    path.write_text(text)


def test_step_files_created_broken_fixed_and_deleted_under_a_running_server(new_stack, scratch):
    """A new step file receives events after the reload its saving causes; a syntax
    error, then a duplicate step name, stop server and workers with the error, its fix
    and no traceback; fixing the file, or removing the duplicate, brings both back; a
    removed step receives nothing more."""
    stack = new_stack(env=scratch_env(scratch))
    audit = scratch / "audit_signup_step.py"

    save(audit, AUDIT.format(version="v1"))
    saved = time.monotonic()
    wait_for(reloaded(stack, 1), 30, "a reload for the new step", stack)
    assert "audit_signup_step.py was added, reloading." in stack.log()
    user = register(stack)["userId"]
    wait_for(lambda: audited(stack, user) == "v1", 10, "the new step to run", stack)
    print(f"a new step ran {time.monotonic() - saved:.1f} s after its file was saved")

    save(audit, AUDIT.format(version="v1") + "\nbroken = (\n")
    wait_for(lambda: stack.log().count(WAITING) == 1, 30, "E003 for the broken file", stack)
    log = stack.log()
    assert "audit_signup_step.py could not be loaded: SyntaxError" in log
    assert "HINT: fix line 10 of" in log
    assert "Traceback" not in log
    assert not answers(stack) and stack.cluster_processes() == []

    save(audit, AUDIT.format(version="v2"))
    wait_for(reloaded(stack, 3), 30, "the server back after the fix", stack)
    user = register(stack)["userId"]
    wait_for(lambda: audited(stack, user) == "v2", 10, "the fixed step to run", stack)

    duplicate = scratch / "audit_again_step.py"
    save(duplicate, AUDIT.format(version="dup"))
    wait_for(lambda: stack.log().count(WAITING) == 2, 30, "E001 for the duplicate", stack)
    assert "(workflow.E001) step name 'AuditSignup'" in stack.log()

    duplicate.unlink()
    wait_for(reloaded(stack, 5), 30, "the server back after the removal", stack)
    audit.unlink()
    wait_for(reloaded(stack, 6), 30, "a reload after the step was removed", stack)
    assert "audit_signup_step.py was removed, reloading." in stack.log()
    user = register(stack)["userId"]
    wait_active(stack, user, timeout=10)
    assert audited(stack, user) is None
    count = "SELECT COUNT(*) FROM workflow_delivery WHERE step_name = 'AuditSignup'"
    assert stack.query(count) == [(2,)], "a removed step got a delivery"


WAITING = "runserver is waiting: fix the errors above"
