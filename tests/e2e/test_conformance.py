"""The published OpenAPI document is the contract: a live server keeps it.

Schemathesis reads ``/api/schema/`` from a real ``manage.py runserver`` and sends what
it generates from the document, valid requests and invalid ones (wrong types, missing
fields, bad headers, methods the path does not serve), through all its phases
(coverage, fuzzing, and stateful: a registration, then its status), and runs every
check on each answer: no 5xx, the status, content type, headers and body as
documented, invalid data refused, valid data accepted. Zero failures.

Its settings are in ``schemathesis.toml`` beside this file (with ``conformance_hooks.py``):
deterministic and capped in examples, so a failure reproduces and the run takes about
20 s. To fuzz longer by hand, against ``runserver`` in another terminal::

    st --config-file tests/e2e/schemathesis.toml run \\
        "http://127.0.0.1:8000/api/schema/?format=json" --checks=all --max-examples=400
"""

import subprocess
import sys
from pathlib import Path

import pytest

from bench.stack import ROOT

pytestmark = pytest.mark.e2e

ST = str(Path(sys.executable).parent / "st")
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_the_live_api_keeps_its_openapi_document(new_stack):
    """Every check of schemathesis, positive and negative cases, on every operation of
    the published document, against runserver: no failure."""
    stack = new_stack(reload=False, env={"WORKFLOW_EMBEDDED_WORKERS": "0"})
    run = subprocess.run(
        [ST, "--config-file", str(CONFIG), "run", f"{stack.base}/api/schema/?format=json"]
        + ["--checks=all", "--no-color"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{stack.log()[-3000:]}"
    assert "No issues found" in run.stdout, run.stdout
