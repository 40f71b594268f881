"""Fails its first ``fail_times`` attempts at each item, then succeeds."""

import os
from pathlib import Path

from workflow.steps import EventStep

config = EventStep(
    name="Flaky",
    description="Fails a given number of times, then succeeds",
    flows=["probe"],
    subscribes=["probe.flaky"],
    infrastructure={
        "queue": {
            "max_retries": 3,
            "backoff": {"initial": 0.5, "factor": 2, "jitter": False},
        }
    },
)


def handler(input, ctx):
    attempts = Path(os.environ["PROBE_DIR"]) / f"flaky-{input['id']}"
    with attempts.open("a") as file:
        file.write("attempt\n")
    tried = len(attempts.read_text().splitlines())
    if tried <= input["fail_times"]:
        raise RuntimeError(f"failing on purpose, attempt {tried}")
    ctx.state.update("probe-done", input["id"], lambda n: (n or 0) + 1)
