from workflow.steps import CronStep

config = CronStep(
    name="Heartbeat",
    description="Fires every second, so tests can measure cron lateness",
    cron="* * * * * *",
    flows=["probe"],
)


def handler(ctx):
    ctx.state.update("probe", "heartbeats", lambda n: (n or 0) + 1)
