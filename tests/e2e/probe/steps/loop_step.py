"""Subscribes to the topic it emits: a cycle, stopped at WORKFLOW["MAX_DEPTH"]."""

from workflow.steps import EventStep

config = EventStep(
    name="Loop",
    description="Emits what it subscribes to",
    flows=["probe"],
    subscribes=["probe.loop"],
    emits=["probe.loop"],
)


def handler(input, ctx):
    ctx.emit("probe.loop", {"n": input.get("n", 0) + 1})
