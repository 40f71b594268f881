from bookings import services
from bookings.serializers import BookingErrorSerializer, BookingStatusSerializer
from workflow.handlers import ApiRequest, ApiResponse, Context
from workflow.steps import ApiStep

config = ApiStep(
    name="GetBooking",
    description="A booking's status, reason and reservations",
    method="GET",
    path="/bookings/:bookingId",
    flows=["trip-booking"],
    response_schema={200: BookingStatusSerializer, 404: BookingErrorSerializer},
)


def handler(request: ApiRequest, ctx: Context) -> ApiResponse:
    booking = ctx.state.get(services.GROUP, request.path_params["bookingId"])
    if booking is None:
        return {"status": 404, "body": {"error": "Booking not found"}}
    ledger = services.TRIP.ledger(ctx.state, booking["bookingId"])
    return {"status": 200, "body": services.status(booking, ledger)}
