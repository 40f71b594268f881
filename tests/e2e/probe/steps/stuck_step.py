"""Reads state, then waits for a minute: a handler that holds up its thread (and, if
the runtime kept it, a pooled database connection) long past a test's registrations."""

import threading

from workflow.steps import EventStep

config = EventStep(
    name="Stuck",
    description="Reads state, then waits a minute",
    flows=["probe"],
    subscribes=["probe.stuck"],
    infrastructure={"handler": {"timeout": 60}, "queue": {"max_retries": 0}},
)


def handler(input, ctx):
    ctx.state.get("probe", "counter")
    threading.Event().wait(60)
