from typing import Any

from users import services
from users.serializers import NewUserSerializer
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="SetupUserAccount",
    description="Setup user account with default settings and preferences",
    flows=["user-registration"],
    subscribes=["user.registered"],
    # Open: for subscribers yet to come (no step subscribes to it in this project).
    emits=[{"topic": "account.setup.completed", "open": True}],
    input=NewUserSerializer,
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    user_id = input["userId"]
    ctx.logger.info("Setting up user account", userId=user_id)
    completed = services.setup_account(ctx.state, user_id, input["name"], input["email"])
    ctx.logger.info("User account setup completed", userId=user_id)
    ctx.emit("account.setup.completed", completed)
    ctx.logger.info("Account setup workflow completed", userId=user_id)
