"""Rate limited to 5 starts a second; its runs' start times show the spread."""

from workflow.steps import EventStep

config = EventStep(
    name="Throttled",
    description="At most 5 starts a second",
    flows=["probe"],
    subscribes=["probe.throttled"],
    rate_limit={"limit": 5, "period": 1},
)


def handler(input, ctx):
    pass
