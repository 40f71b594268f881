"""Debounced by data['key'] for 1 s: only the last event of a burst runs."""

from workflow.steps import EventStep

config = EventStep(
    name="Debounced",
    description="The last event of a burst, 1 s after it",
    flows=["probe"],
    subscribes=["probe.debounced"],
    debounce={"period": 1, "key": "key"},
)


def handler(input, ctx):
    ctx.state.set("probe-debounced", input["key"], input["n"])
