from typing import Any

from users import verification
from users.serializers import EmailVerifiedSerializer
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="ActivateAccount",
    description="Activate the account once its email is verified",
    flows=["email-verification"],
    subscribes=["email.verified"],
    emits=["account.activated"],
    input=EmailVerifiedSerializer,
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    verification.activate(ctx.state, input["userId"])
    ctx.logger.info("Account activated", userId=input["userId"])
    ctx.emit("account.activated", {"userId": input["userId"], "email": input["email"]})
