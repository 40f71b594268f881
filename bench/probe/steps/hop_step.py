from bench.probe.stamps import stamp
from workflow.steps import EventStep

config = EventStep(
    name="BenchHop",
    description="Records when it starts: emit-to-handler latency",
    flows=["bench"],
    subscribes=["bench.hop"],
)


def handler(input, ctx):
    stamp(input["sent"])
