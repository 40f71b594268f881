from typing import Any

from users import verification
from users.serializers import EmailVerifiedSerializer
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="SendActivationNotice",
    description="Tell the user their account is active (the chain's last link)",
    flows=["email-verification"],
    subscribes=["account.activated"],
    input=EmailVerifiedSerializer,
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    verification.send_activation_notice(ctx.state, input["userId"])
    ctx.logger.info("Activation notice sent", userId=input["userId"])
