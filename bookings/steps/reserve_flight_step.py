from typing import Any

from bookings import services
from bookings.serializers import BookingStartedSerializer
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="ReserveFlight",
    description='Reserve the booking\'s flight (refused when it is "unavailable")',
    flows=["trip-booking"],
    subscribes=["booking.started"],
    emits=["flight.reserved", "flight.failed"],
    input=BookingStartedSerializer,
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    services.reserve_step("flight", input, ctx)
