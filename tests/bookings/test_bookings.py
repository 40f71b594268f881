"""The trip-booking example (bookings/steps): its API contract, and its saga run inline
by workflow.testing: confirmed with three reservations, or cancelled with every
reservation made released once, on a refusal, a timeout, or a reservation that comes
after the cancellation."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

import workflow.urls  # noqa: F401  (routes are built from the real registry)
from bookings import services
from workflow import joins
from workflow.models import Delivery
from workflow.registry import registry

pytestmark = pytest.mark.django_db
VALID = {"customer": "Ada Lovelace", "flight": "LH 123", "hotel": "Ritz", "car": "Mini"}
BOOKING_ID = re.compile(r"^booking-\d+-[0-9a-f]{8}$")


@pytest.fixture
def flow(flow):
    flow.sleep = False  # the reservations' 0.3 s: recorded in flow.slept instead
    return flow


def book(flow, **overrides):
    response = flow.post("/bookings", {**VALID, **overrides}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def status(flow, booking_id):
    return flow.get(f"/bookings/{booking_id}").json()


def test_a_booking_answers_201_started_and_ends_confirmed_with_three_reservations(flow):
    created = book(flow)
    assert BOOKING_ID.match(created["bookingId"])
    assert created == {
        "bookingId": created["bookingId"],
        "status": "started",
        **VALID,
        "createdAt": created["createdAt"],
    }
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", created["createdAt"])
    found = status(flow, created["bookingId"])
    assert found["status"] == "confirmed" and found["reason"] is None
    reservations = found["reservations"]
    assert set(reservations) == {"flight", "hotel", "car"}
    for item, made in reservations.items():
        assert made["status"] == "reserved" and made["reservationId"].startswith(f"{item}-")
    assert flow.emitted("booking.confirmed")[0]["reservations"] == {
        item: made["reservationId"] for item, made in reservations.items()
    }
    assert flow.slept == [services.RESERVE_SECONDS] * 3
    assert not [t for t in flow.topics if t.endswith(".released")]


@pytest.mark.parametrize("item", ["flight", "hotel", "car"])
def test_an_unavailable_item_cancels_the_booking_and_releases_the_other_two_once(flow, item):
    created = book(flow, **{item: "unavailable"})
    found = status(flow, created["bookingId"])
    assert found["status"] == "cancelled"
    assert found["reason"] == f"{item} 'unavailable' is unavailable"
    assert found["reservations"][item] == {"status": "failed", "reservationId": None}
    others = [other for other in ("flight", "hotel", "car") if other != item]
    for other in others:
        assert found["reservations"][other]["status"] == "released"
        released = flow.emitted(f"{other}.released")
        assert released == [
            {
                "bookingId": created["bookingId"],
                "reservationId": found["reservations"][other]["reservationId"],
            }
        ]
    assert flow.emitted("booking.confirmed") == []
    refused = Delivery.objects.get(step_name=f"Reserve{item.capitalize()}")
    assert (refused.status, refused.attempts) == ("succeeded", 1)  # an answer: no retry


def test_a_join_that_times_out_cancels_the_booking_and_releases_what_was_reserved(flow):
    """The car's reservation never comes: past the join's timeout the booking is
    cancelled and the two reservations released; the car's, arriving after, too."""
    created = book(flow)
    booking_id = created["bookingId"]
    # Undo the car's reservation as if it never came: a fresh booking, its car pending.
    flow2_id = start_without_car(flow)
    later = timezone.now() + timedelta(seconds=31)
    assert joins.expire(registry, later) == 1
    flow.run_until_quiet()
    found = status(flow, flow2_id)
    assert found["status"] == "cancelled" and found["reason"] == "timed out waiting for car"
    assert {item: made and made["status"] for item, made in found["reservations"].items()} == {
        "flight": "released",
        "hotel": "released",
        "car": None,
    }
    flow.emit("car.reserved", {"bookingId": flow2_id, "reservationId": "car-late"})
    found = status(flow, flow2_id)
    assert found["reservations"]["car"] == {"status": "released", "reservationId": "car-late"}
    assert [d["reservationId"] for d in flow.emitted("car.released")] == ["car-late"]
    assert found["status"] == "cancelled"
    assert status(flow, booking_id)["status"] == "confirmed"  # the other one, untouched


def start_without_car(flow):
    """A booking whose flight and hotel are reserved and whose car never answers."""
    booking = services.start_booking(services_state(), VALID)
    booking_id = booking["bookingId"]
    for item in ("flight", "hotel"):
        flow.emit(f"{item}.reserved", {"bookingId": booking_id, "reservationId": f"{item}-x"})
    return booking_id


def services_state():
    from workflow.state import StateStore

    return StateStore()


def test_a_reservation_after_the_cancellation_is_released(flow):
    booking = services.start_booking(services_state(), VALID)
    booking_id = booking["bookingId"]
    flow.emit("flight.failed", {"bookingId": booking_id, "reason": "no seats"})
    flow.emit("hotel.reserved", {"bookingId": booking_id, "reservationId": "hotel-1"})
    found = status(flow, booking_id)
    assert found["status"] == "cancelled" and found["reason"] == "no seats"
    assert found["reservations"]["hotel"] == {"status": "released", "reservationId": "hotel-1"}
    assert flow.emitted("hotel.released") == [{"bookingId": booking_id, "reservationId": "hotel-1"}]


def test_an_unknown_booking_is_404(flow):
    response = flow.get("/bookings/booking-0-00000000")
    assert response.status_code == 404
    assert response.json() == {"error": "Booking not found"}


@pytest.mark.parametrize(
    "overrides, fields",
    [
        ({"customer": "A"}, ["customer"]),
        ({"customer": "x" * 101}, ["customer"]),
        ({"flight": ""}, ["flight"]),
        ({"hotel": "h" * 101, "car": 7}, ["car", "hotel"]),
        ({"flight": None}, ["flight"]),
    ],
)
def test_a_bad_body_answers_400_naming_the_fields_and_starts_nothing(flow, overrides, fields):
    response = flow.post("/bookings", {**VALID, **overrides}, format="json")
    assert response.status_code == 400
    assert sorted(response.json()) == fields
    assert flow.topics == []


def test_a_missing_field_is_named(flow):
    body = {k: v for k, v in VALID.items() if k != "hotel"}
    response = flow.post("/bookings", body, format="json")
    assert response.status_code == 400 and list(response.json()) == ["hotel"]


def test_the_saga_takes_outcomes_in_any_order_and_releases_each_reservation_once():
    """The trip saga's ledger, as a pure function: whatever the order of a refusal and
    the reservations, a cancelled booking ends with every reservation made released once."""
    import itertools

    outcomes = [
        ("flight.reserved", {"reservationId": "f"}),
        ("hotel.failed", {"reason": "full"}),
        ("car.reserved", {"reservationId": "c"}),
    ]
    for order in itertools.permutations(outcomes):
        ledger, released = services.TRIP.new(), []
        for topic, data in order:
            ledger, now = services.TRIP.record(ledger, topic, data)
            released += [(part, data["reservationId"]) for part, data in now]
            assert ledger["status"] != "completed"
        assert ledger["status"] == "aborted" and ledger["reason"] == "full"
        assert sorted(released) == [("car", "c"), ("flight", "f")], order
