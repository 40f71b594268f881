from users import verification
from users.serializers import ErrorSerializer, VerificationSerializer
from workflow.handlers import ApiRequest, ApiResponse, Context
from workflow.steps import ApiStep

config = ApiStep(
    name="VerifyEmail",
    description="The verification link of the welcome email, clicked (simulated)",
    method="POST",
    path="/users/:userId/verify-email",
    flows=["email-verification"],
    # The link is in the welcome email: drawn as a dashed edge from email.sent.
    virtual_subscribes=["email.sent"],
    emits=["email.verified"],
    response_schema={
        202: VerificationSerializer,
        200: VerificationSerializer,
        404: ErrorSerializer,
        409: ErrorSerializer,
    },
)


def handler(request: ApiRequest, ctx: Context) -> ApiResponse:
    user_id = request.path_params["userId"]
    user = ctx.state.get("users", user_id)
    if user is None:
        return {"status": 404, "body": {"error": "User not found"}}
    try:
        verified, new = verification.verify_email(ctx.state, user_id)
    except verification.NotYet:
        return {"status": 409, "body": {"error": "Welcome email not sent yet"}}
    if not new:  # a second click: nothing more to do
        return {"status": 200, "body": verified}
    ctx.logger.info("Email verified", userId=user_id)
    ctx.emit("email.verified", {"userId": user_id, "email": user["email"]})
    return {"status": 202, "body": verified}
