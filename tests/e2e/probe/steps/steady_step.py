"""Healthy but slower than its visibility timeout: its lease is renewed while it runs."""

import time

from workflow.steps import EventStep

config = EventStep(
    name="Steady",
    description="Takes longer than its visibility timeout",
    flows=["probe"],
    subscribes=["probe.steady"],
    infrastructure={"queue": {"visibility_timeout": 2, "max_retries": 3}},
)


def handler(input, ctx):
    ctx.state.update("probe-started", input["id"], lambda n: (n or 0) + 1)
    time.sleep(input["seconds"])
    ctx.state.update("probe-done", input["id"], lambda n: (n or 0) + 1)
