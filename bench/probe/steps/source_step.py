from workflow.steps import NoopStep

config = NoopStep(
    name="BenchSource",
    description="The benchmark scripts, which emit these topics from outside any step",
    flows=["bench"],
    virtual_emits=["bench.hop", "bench.noop"],
)
