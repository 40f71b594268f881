"""A join: runs once per id when parts a, b and c of it have arrived; after 3 s without
them all, what it got goes to probe.gather.ended (as does a part that comes later)."""

from workflow.steps import EventStep

config = EventStep(
    name="Gather",
    description="Joins parts a, b and c of an id",
    flows=["probe"],
    subscribes=["probe.part.a", "probe.part.b", "probe.part.c"],
    join={"key": "id", "timeout": 3, "on_timeout": "probe.gather.ended"},
)


def handler(input, ctx):
    ctx.state.update("probe-gathered", input["probe.part.a"]["id"], lambda n: (n or 0) + 1)
