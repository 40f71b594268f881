"""Fails while a fault file for the item exists; writes and emits before failing."""

import os
from pathlib import Path

from workflow.steps import EventStep

config = EventStep(
    name="Fragile",
    description="Fails while its fault is present",
    flows=["probe"],
    subscribes=["probe.fragile"],
    emits=["probe.count"],
    infrastructure={
        "queue": {"max_retries": 2, "backoff": {"initial": 0.2, "factor": 1, "jitter": False}}
    },
)


def handler(input, ctx):
    ctx.state.set("probe-fragile", input["id"], "written by an attempt")
    ctx.emit("probe.count", {"from": input["id"]})
    ctx.logger.info("Fragile attempt", id=input["id"])
    if (Path(os.environ["PROBE_DIR"]) / f"fault-{input['id']}").exists():
        raise ConnectionError("the fault is still there")
