"""Concurrency 1 per data['key']: sleeps a little, and keeps when its handler ran
(wall-clock start and end) under the item, to show any overlap."""

import random
import time

from workflow.steps import EventStep

config = EventStep(
    name="OneAtATime",
    description="At most one run per key at once",
    flows=["probe"],
    subscribes=["probe.one_at_a_time"],
    concurrency={"limit": 1, "key": "key"},
)


def handler(input, ctx):
    start = time.time()
    time.sleep(random.uniform(0.02, 0.08))
    ctx.state.set("probe-one-at-a-time", f"{input['key']}/{input['n']}", [start, time.time()])
