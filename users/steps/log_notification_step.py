from typing import Any

from users import services
from users.serializers import EmailSentSerializer
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="LogNotification",
    description="Log all email notifications and store notification history",
    flows=["user-registration"],
    subscribes=["email.sent"],
    emits=[],
    input=EmailSentSerializer,
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    user_id, type_ = input["userId"], input["type"]
    ctx.logger.info("Logging notification", userId=user_id, type=type_, email=input["email"])
    log_id = services.log_notification(ctx.state, user_id, input["email"], type_, input["sentAt"])
    ctx.logger.info("Notification logged successfully", userId=user_id, logId=log_id)
