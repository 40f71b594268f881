"""The business logic of the trip-booking flow (the tutorial's saga); the steps call these.

A booking is written once, at its start (state group ``bookings``). What becomes of it
is the trip saga's ledger (``TRIP``, ``workflow.saga``), kept by ``UpdateBooking``, the
saga's own step, which takes each outcome of a booking in turn (a fifo queue grouped by
``bookingId``): a cancelled booking is never confirmed, and every reservation made for
a cancelled booking is released exactly once, by ``ReleaseReservation``.
"""

import secrets
import time
from typing import Any

from django.utils import timezone

from workflow.saga import Saga
from workflow.state import State

from .serializers import ITEMS

GROUP = "bookings"
RESERVE_SECONDS = 0.3  # each reservation takes this long (simulated, by sleeping)
UNAVAILABLE = "unavailable"  # an item with this value is refused

TRIP = Saga(
    name="trip",
    key="bookingId",
    parts=ITEMS,
    succeeded="{part}.reserved",
    failed="{part}.failed",
    compensate="{part}.release",  # ReleaseReservation releases it
    completed="booking.confirmed",  # ConfirmBooking, the join of the three reservations
    timed_out="booking.join_timed_out",
)
# The saga's words (workflow.saga) in the contract's.
STATUS = {"running": "started", "completed": "confirmed", "aborted": "cancelled"}
RESERVATION = {"succeeded": "reserved", "failed": "failed", "compensated": "released"}


def iso_now() -> str:
    """The time as the tutorial writes it: 2024-01-28T10:30:00.000Z."""
    return timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_booking_id() -> str:
    """``booking-<ms>-<random>``, as user ids are made."""
    return f"booking-{time.time_ns() // 1_000_000}-{secrets.token_hex(4)}"


def start_booking(state: State, body: dict[str, str]) -> dict[str, Any]:
    """Record a new booking; returns it. Its saga's ledger starts with its first outcome."""
    booking = {
        "bookingId": new_booking_id(),
        "customer": body["customer"],
        **{item: body[item] for item in ITEMS},
        "createdAt": iso_now(),
    }
    state.set(GROUP, booking["bookingId"], booking)
    return booking


def created(booking: dict[str, Any]) -> dict[str, Any]:
    """What POST /bookings answers."""
    return {
        "bookingId": booking["bookingId"],
        "status": "started",
        **{field: booking[field] for field in ("customer", *ITEMS, "createdAt")},
    }


def status(booking: dict[str, Any], ledger: dict[str, Any] | None) -> dict[str, Any]:
    """What GET /bookings/:bookingId answers: the booking as its saga's ``ledger`` has it
    (None: no outcome yet)."""
    ledger = ledger or TRIP.new()

    def reservation(part: dict[str, Any] | None) -> dict[str, Any] | None:
        if part is None:
            return None
        made = part["data"].get("reservationId") if part["status"] != "failed" else None
        return {"status": RESERVATION[part["status"]], "reservationId": made}

    return {
        "bookingId": booking["bookingId"],
        "status": STATUS[ledger["status"]],
        "reason": ledger["reason"],
        "reservations": {item: reservation(ledger["parts"][item]) for item in ITEMS},
    }


def reserve(item: str, value: str) -> dict[str, Any] | None:
    """Reserve ``value`` (simulated: it takes RESERVE_SECONDS); its reservation, or None
    when it is refused (the value "unavailable")."""
    time.sleep(RESERVE_SECONDS)
    if value == UNAVAILABLE:
        return None
    return {"reservationId": f"{item}-{secrets.token_hex(6)}"}


def reserve_step(item: str, input: dict[str, Any], ctx) -> None:
    """Reserve<Item>: ``<item>.reserved``, or ``<item>.failed`` for a refusal (an
    answer, not a fault: it is not retried)."""
    booking_id, value = input["bookingId"], input[item]
    made = reserve(item, value)
    if made is None:
        reason = f"{item} {value!r} is unavailable"
        ctx.logger.warn("Reservation refused", bookingId=booking_id, item=item, reason=reason)
        ctx.emit(f"{item}.failed", {"bookingId": booking_id, "reason": reason})
        return
    ctx.logger.info("Reserved", bookingId=booking_id, item=item, **made)
    ctx.emit(f"{item}.reserved", {"bookingId": booking_id, **made})


def release_step(input: dict[str, Any], ctx) -> None:
    """ReleaseReservation, the compensation of one part: release the reservation
    (simulated) and say so on ``<item>.released``, for the supplier's systems."""
    item = ctx.event.topic.split(".", 1)[0]
    ctx.logger.info("Released", bookingId=input["bookingId"], item=item)
    released = {"bookingId": input["bookingId"], "reservationId": input["reservationId"]}
    ctx.emit(f"{item}.released", released)
