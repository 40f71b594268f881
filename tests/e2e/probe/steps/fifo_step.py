"""Appends each item's seq to its group's list: the list shows the order runs happened in."""

import random
import time

from workflow.steps import EventStep

config = EventStep(
    name="Ordered",
    description="A fifo step, one group per data['group']",
    flows=["probe"],
    subscribes=["probe.fifo"],
    infrastructure={"queue": {"type": "fifo", "message_group_id": "group"}},
)


def handler(input, ctx):
    time.sleep(random.uniform(0, 0.05))
    ctx.state.update("probe-fifo", input["group"], lambda seen: [*(seen or []), input["seq"]])
