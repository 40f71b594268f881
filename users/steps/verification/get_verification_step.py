from users import verification
from users.serializers import ErrorSerializer, VerificationSerializer
from workflow.handlers import ApiRequest, ApiResponse, Context
from workflow.steps import ApiStep

config = ApiStep(
    name="GetVerification",
    description="How far a user's email verification has gone",
    method="GET",
    path="/users/:userId/verification",
    flows=["email-verification"],
    response_schema={200: VerificationSerializer, 404: ErrorSerializer},
)


def handler(request: ApiRequest, ctx: Context) -> ApiResponse:
    found = verification.verification(ctx.state, request.path_params["userId"])
    if found is None:
        return {"status": 404, "body": {"error": "User not found"}}
    return {"status": 200, "body": found}
