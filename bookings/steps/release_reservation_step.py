from typing import Any

from bookings import services
from workflow.handlers import Context
from workflow.steps import EventStep

config = EventStep(
    name="ReleaseReservation",
    description="Undo a reservation of a cancelled booking (the saga's compensation)",
    flows=["trip-booking"],
    subscribes=services.TRIP.compensations(),
    # For the suppliers' systems (not in this project): released reservations.
    emits=[{"topic": f"{item}.released", "open": True} for item in services.ITEMS],
)


def handler(input: dict[str, Any], ctx: Context) -> None:
    services.release_step(input, ctx)
