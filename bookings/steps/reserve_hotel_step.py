from typing import Any

from bookings import services
from bookings.serializers import BookingStartedSerializer
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="ReserveHotel",
    description='Reserve the booking\'s hotel (refused when it is "unavailable")',
    flows=["trip-booking"],
    subscribes=["booking.started"],
    emits=["hotel.reserved", "hotel.failed"],
    input=BookingStartedSerializer,
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    services.reserve_step("hotel", input, ctx)
