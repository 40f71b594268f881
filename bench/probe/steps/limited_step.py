from workflow.steps import EventStep

config = EventStep(
    name="BenchLimited",
    description="Does nothing, under flow control: the guarded claim's own cost",
    flows=["bench"],
    subscribes=["bench.limited"],
    # One at a time per n: each event has its own n, so the limit never binds, and
    # every claim takes the guarded path (one by one, counting the key's running ones).
    concurrency={"limit": 1, "key": "n"},
)


def handler(input, ctx):
    pass
