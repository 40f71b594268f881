from workflow.steps import EventStep

config = EventStep(
    name="Counter",
    description="Adds one to a shared counter",
    flows=["probe"],
    subscribes=["probe.count"],
)


def handler(input, ctx):
    ctx.state.update("probe", "counter", lambda n: (n or 0) + 1)
