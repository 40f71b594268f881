from typing import Any

from django.conf import settings

from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="ConfirmBooking",
    description="Confirm a booking once its flight, hotel and car are all reserved",
    flows=["trip-booking"],
    subscribes=["flight.reserved", "hotel.reserved", "car.reserved"],
    # Waits for the three, by bookingId; after 30 s (BOOKINGS_JOIN_TIMEOUT) without them
    # all, or for one that comes later, booking.join_timed_out (UpdateBooking cancels the
    # booking and releases what was reserved).
    join={
        "key": "bookingId",
        "timeout": settings.BOOKINGS_JOIN_TIMEOUT,
        "on_timeout": "booking.join_timed_out",
    },
    emits=["booking.confirmed"],
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    booking_id = input["flight.reserved"]["bookingId"]
    reservations = {topic.split(".")[0]: data["reservationId"] for topic, data in input.items()}
    ctx.logger.info("All reserved: confirming", bookingId=booking_id)
    ctx.emit("booking.confirmed", {"bookingId": booking_id, "reservations": reservations})
