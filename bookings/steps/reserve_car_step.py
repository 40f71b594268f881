from typing import Any

from bookings import services
from bookings.serializers import BookingStartedSerializer
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="ReserveCar",
    description='Reserve the booking\'s car (refused when it is "unavailable")',
    flows=["trip-booking"],
    subscribes=["booking.started"],
    emits=["car.reserved", "car.failed"],
    input=BookingStartedSerializer,
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    services.reserve_step("car", input, ctx)
