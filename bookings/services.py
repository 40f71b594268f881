"""The business logic of the trip-booking flow (the tutorial's saga); the steps call these.

A booking lives in state (group ``bookings``), written at its start and then only by
``UpdateBooking``, which takes each outcome of a booking in turn (a fifo queue grouped
by ``bookingId``): ``record()`` is the one place its status and reservations change,
so a cancelled booking is never confirmed, and every reservation made for a cancelled
booking is released exactly once.
"""

import copy
import secrets
import time
from typing import Any

from django.utils import timezone

from workflow.state import State

from .serializers import ITEMS

GROUP = "bookings"
RESERVE_SECONDS = 0.3  # each reservation takes this long (simulated, by sleeping)
UNAVAILABLE = "unavailable"  # an item with this value is refused


def iso_now() -> str:
    """The time as the tutorial writes it: 2024-01-28T10:30:00.000Z."""
    return timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_booking_id() -> str:
    """``booking-<ms>-<random>``, as user ids are made."""
    return f"booking-{time.time_ns() // 1_000_000}-{secrets.token_hex(4)}"


def start_booking(state: State, body: dict[str, str]) -> dict[str, Any]:
    """Record a new booking, started, with no reservation yet; returns it."""
    booking = {
        "bookingId": new_booking_id(),
        "status": "started",
        "reason": None,
        "customer": body["customer"],
        **{item: body[item] for item in ITEMS},
        "createdAt": iso_now(),
        "reservations": dict.fromkeys(ITEMS),
    }
    state.set(GROUP, booking["bookingId"], booking)
    return booking


def created(booking: dict[str, Any]) -> dict[str, Any]:
    """What POST /bookings answers."""
    fields = ("bookingId", "status", "customer", *ITEMS, "createdAt")
    return {field: booking[field] for field in fields}


def status(booking: dict[str, Any]) -> dict[str, Any]:
    """What GET /bookings/:bookingId answers."""
    fields = ("bookingId", "status", "reason", "reservations")
    return {field: booking[field] for field in fields}


def reserve(item: str, value: str) -> dict[str, Any] | None:
    """Reserve ``value`` (simulated: it takes RESERVE_SECONDS); its reservation, or None
    when it is refused (the value "unavailable")."""
    time.sleep(RESERVE_SECONDS)
    if value == UNAVAILABLE:
        return None
    return {"reservationId": f"{item}-{secrets.token_hex(6)}"}


def item_of(topic: str) -> str | None:
    """``flight`` for ``flight.reserved``; None for a topic of no item."""
    item = topic.split(".", 1)[0]
    return item if item in ITEMS else None


def record(booking: dict[str, Any], topic: str, data: dict[str, Any]):
    """One outcome of ``booking``: the booking after it, and the reservations to
    release now, ``[(item, reservationId)]``. A pure function: ``UpdateBooking`` takes a
    booking's outcomes one at a time, in the order they were emitted.

    - ``<item>.reserved``: the reservation is made; for a cancelled booking, released.
    - ``<item>.failed``: the item is refused; a started booking is cancelled, and every
      reservation made so far released.
    - ``booking.confirmed`` (the join of the three reservations): a started booking is
      confirmed, with the three reservations.
    - ``booking.join_timed_out``: a timeout cancels a started booking (releasing what
      was reserved); a late or duplicate reservation is handled as ``<item>.reserved``
      (it comes through that topic too).
    """
    booking = copy.deepcopy(booking)
    reservations = booking["reservations"]
    releases: list[tuple[str, str]] = []
    item = item_of(topic)

    def cancel(reason: str) -> None:
        booking["status"], booking["reason"] = "cancelled", reason
        for name, made in reservations.items():
            if made and made["status"] == "reserved":
                made["status"] = "released"
                releases.append((name, made["reservationId"]))

    if topic.endswith(".reserved") and item:
        made = {"status": "reserved", "reservationId": data["reservationId"]}
        if reservations[item] is None or reservations[item]["status"] != "released":
            reservations[item] = made
        if booking["status"] == "cancelled" and reservations[item]["status"] == "reserved":
            reservations[item]["status"] = "released"
            releases.append((item, data["reservationId"]))
    elif topic.endswith(".failed") and item:
        reservations[item] = {"status": "failed", "reservationId": None}
        if booking["status"] == "started":
            cancel(data.get("reason") or f"{item} refused")
    elif topic == "booking.confirmed":
        if booking["status"] == "started":
            booking["status"] = "confirmed"
            for name, made in data["reservations"].items():
                reservations[name] = {"status": "reserved", "reservationId": made}
    elif topic == "booking.join_timed_out" and data.get("reason") == "timeout":
        missing = ", ".join(waited.split(".", 1)[0] for waited in data["missing"])
        if booking["status"] == "started":
            cancel(f"timed out waiting for {missing}")
    return booking, releases


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


def update_booking(data: dict[str, Any], ctx) -> None:
    """UpdateBooking: ``record()`` one outcome, and emit ``<item>.released`` for each
    reservation it releases (with the booking's write, in one commit)."""
    topic = ctx.event.topic
    booking = ctx.state.get(GROUP, data.get("bookingId", ""))
    if booking is None:
        ctx.logger.warn("No such booking", topic=topic, bookingId=data.get("bookingId"))
        return
    after, releases = record(booking, topic, data)
    if after != booking:
        ctx.state.set(GROUP, booking["bookingId"], after)
    if after["status"] != booking["status"]:
        ctx.logger.info(
            f"Booking {after['status']}", bookingId=booking["bookingId"], reason=after["reason"]
        )
    for item, reservation_id in releases:
        ctx.logger.info("Released", bookingId=booking["bookingId"], item=item)
        ctx.emit(
            f"{item}.released", {"bookingId": booking["bookingId"], "reservationId": reservation_id}
        )
