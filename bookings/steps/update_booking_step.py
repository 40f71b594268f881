from typing import Any

from bookings import services
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="UpdateBooking",
    description="Record each outcome of a booking in turn; release what a cancelled one reserved",
    flows=["trip-booking"],
    subscribes=["*.reserved", "*.failed", "booking.confirmed", "booking.join_timed_out"],
    # One outcome of a booking at a time, in the order they were emitted.
    infrastructure={"queue": {"type": "fifo", "message_group_id": "bookingId"}},
    # For the suppliers' systems (not in this project): released reservations.
    emits=[
        {"topic": "flight.released", "open": True},
        {"topic": "hotel.released", "open": True},
        {"topic": "car.released", "open": True},
    ],
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    services.update_booking(input, ctx)
