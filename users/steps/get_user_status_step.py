from users import services
from users.serializers import ErrorSerializer, UserStatusSerializer
from workflow.handlers import ApiRequest, ApiResponse, Context
from workflow.steps import ApiStep

config = ApiStep(
    name="GetUserStatus",
    description="Get user registration status and details",
    method="GET",
    path="/users/:userId/status",
    flows=["user-registration"],
    emits=[],
    response_schema={200: UserStatusSerializer, 404: ErrorSerializer},
)


def handler(request: ApiRequest, ctx: Context) -> ApiResponse:
    user_id = request.path_params["userId"]
    ctx.logger.info("Fetching user status", userId=user_id)
    status = services.user_status(ctx.state, user_id)
    if status is None:
        return {"status": 404, "body": {"error": "User not found"}}
    return {"status": 200, "body": status}
