from bookings import services
from bookings.serializers import BookingSerializer, NewBookingSerializer
from workflow.handlers import ApiRequest, ApiResponse, Context
from workflow.steps import ApiStep

config = ApiStep(
    name="CreateBooking",
    description="Start a trip booking: a flight, a hotel and a car, reserved in parallel",
    method="POST",
    path="/bookings",
    flows=["trip-booking"],
    emits=["booking.started"],
    body_schema=NewBookingSerializer,
    response_schema={201: BookingSerializer},
)


def handler(request: ApiRequest, ctx: Context) -> ApiResponse:
    booking = services.start_booking(ctx.state, request.body)
    ctx.logger.info("Booking started", bookingId=booking["bookingId"])
    ctx.emit(
        "booking.started",
        {"bookingId": booking["bookingId"], **{i: booking[i] for i in ("flight", "hotel", "car")}},
    )
    return {"status": 201, "body": services.created(booking)}
