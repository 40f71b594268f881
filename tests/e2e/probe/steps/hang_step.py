"""Reads state, then never returns: a hung handler, timed out after 2 s, tried twice."""

import threading

from workflow.steps import EventStep

config = EventStep(
    name="Hang",
    description="Reads state, then waits for ever",
    flows=["probe"],
    subscribes=["probe.hang"],
    infrastructure={
        "handler": {"timeout": 2},
        "queue": {"max_retries": 1, "backoff": {"initial": 0.2, "jitter": False}},
    },
)


def handler(input, ctx):
    ctx.state.get("probe", "counter")  # a read, as a real handler's first step would be
    threading.Event().wait()
