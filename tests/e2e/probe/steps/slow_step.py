"""Sleeps, then counts its success per item (a second run after success shows as 2)."""

import time

from workflow.steps import EventStep

config = EventStep(
    name="Slow",
    description="Takes a while",
    flows=["probe"],
    subscribes=["probe.slow"],
    infrastructure={"queue": {"visibility_timeout": 7, "max_retries": 5}},
)


def handler(input, ctx):
    time.sleep(input["seconds"])
    ctx.state.update("probe-done", input["id"], lambda n: (n or 0) + 1)
