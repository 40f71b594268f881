from users import services
from users.serializers import ErrorSerializer, RegisterUserSerializer, UserSerializer
from workflow.handlers import ApiRequest, ApiResponse, Context
from workflow.steps import ApiStep

config = ApiStep(
    name="RegisterUser",
    description="Register a new user and trigger welcome workflow",
    method="POST",
    path="/users/register",
    flows=["user-registration"],
    emits=["user.registered"],
    body_schema=RegisterUserSerializer,
    response_schema={201: UserSerializer, 409: ErrorSerializer},
)


def handler(request: ApiRequest, ctx: Context) -> ApiResponse:
    name, email = request.body["name"], request.body["email"]
    ctx.logger.info("Registering new user", {"name": name, "email": email})
    try:
        user = services.register_user(ctx.state, name, email, request.body["password_hash"])
    except services.EmailTaken:
        ctx.logger.warn("Email already registered", email=email)
        return {"status": 409, "body": {"error": "Email already registered"}}
    ctx.emit("user.registered", {"userId": user["userId"], "name": name, "email": email})
    ctx.logger.info("User registered successfully", userId=user["userId"])
    return {"status": 201, "body": user}
