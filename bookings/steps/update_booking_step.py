"""The trip saga's own step (workflow.saga): it records each outcome of a booking in
turn (fifo by bookingId) and, when the booking is cancelled, asks for the release of
exactly the reservations made, before or after the cancellation."""

from bookings import services

config, handler = services.TRIP.step(
    name="UpdateBooking",
    description="Record each outcome of a booking in turn; release what a cancelled one reserved",
    flows=["trip-booking"],
)
