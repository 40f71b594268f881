from typing import Any

from users import services
from users.serializers import NewUserSerializer
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="SendWelcomeEmail",
    description="Send welcome email to newly registered users",
    flows=["user-registration"],
    subscribes=["user.registered"],
    emits=["email.sent"],
    input=NewUserSerializer,
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    user_id, email = input["userId"], input["email"]
    ctx.logger.info("Sending welcome email", userId=user_id, email=email)
    sent = services.send_welcome_email(ctx.state, user_id, input["name"], email)
    ctx.logger.info("Email sent successfully", userId=user_id, email=email)
    ctx.emit("email.sent", sent)
    ctx.logger.info("Welcome email workflow completed", userId=user_id)
