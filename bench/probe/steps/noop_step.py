from workflow.steps import EventStep

config = EventStep(
    name="BenchNoop",
    description="Does nothing: the runtime's own cost per delivery",
    flows=["bench"],
    subscribes=["bench.noop"],
)


def handler(input, ctx):
    pass
