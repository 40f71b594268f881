"""Nothing after an API step's commit turns its answer into a 500: the run is recorded
once the database can take it."""

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.probing import probe_env, state_values, wait_for

pytestmark = pytest.mark.e2e


def test_a_call_answers_201_while_another_process_holds_the_database_lock(new_stack, tmp_path):
    """The probe step commits; then this process holds SQLite's write lock past the
    server's busy timeout (1 s) while the server records the run. The client gets the
    step's 201 with its trace id before the lock is released, the step's work is
    there, and the run and its trace are stored once the lock is released."""
    env = probe_env(tmp_path, SQLITE_TIMEOUT="1", WORKFLOW_EMBEDDED_WORKERS="0")
    stack = new_stack(reload=False, env=env)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(stack.post, "/probe/committed", {"id": "one"})
        wait_for(lambda: (tmp_path / "committed-one").exists(), 10, "the step's commit", stack)
        lock = sqlite3.connect(stack.workdir / "db.sqlite3", timeout=10, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            (tmp_path / "locked-one").touch()
            response = answer.result(timeout=20)
            assert response.status_code == 201, f"{response.text}\n{stack.log()[-3000:]}"
            assert response.json() == {"id": "one"}
            trace_id = response.headers["X-Trace-Id"]
            sql = "SELECT COUNT(*) FROM workflow_run WHERE trace_id = ?"
            assert stack.query(sql, (trace_id,)) == [(0,)]  # still locked out
            assert state_values(stack, "probe-committed") == {"one": True}
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    sql = "SELECT status, status_code FROM workflow_run WHERE trace_id = ?"
    runs = wait_for(lambda: stack.query(sql, (trace_id,)), 15, "the run stored", stack)
    assert runs == [("succeeded", 201)]
    sql = "SELECT entry_step FROM workflow_trace WHERE trace_id = ?"
    assert stack.query(sql, (trace_id,)) == [("ProbeCommitted",)]
    log = stack.log()
    assert "Could not record the run of API step ProbeCommitted" in log
    assert "database is locked" in log and "Internal Server Error" not in log
