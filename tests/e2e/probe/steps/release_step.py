"""What the Gather join hands on (a timeout, a late or a duplicate part), counted by id
and reason."""

from workflow.steps import EventStep

config = EventStep(
    name="Release",
    description="Counts what the join hands to its timeout topic",
    flows=["probe"],
    subscribes=["probe.gather.ended"],
)


def handler(input, ctx):
    ctx.state.update(
        "probe-released", f"{input['value']}:{input['reason']}", lambda n: (n or 0) + 1
    )
