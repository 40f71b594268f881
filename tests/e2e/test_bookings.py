"""The trip-booking saga (bookings/steps) against runserver and its real cluster: 100
bookings at once, a third of them with one item unavailable, each ends in the right
state with each compensation run once."""

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.e2e
ITEMS = ("flight", "hotel", "car")


def test_100_concurrent_bookings_each_end_confirmed_or_cancelled_with_releases_once(stack):
    bodies = []
    for n in range(100):
        body = {"customer": f"Customer {n}", "flight": f"F{n}", "hotel": f"H{n}", "car": f"C{n}"}
        if n % 3 == 0:
            body[random.choice(ITEMS)] = "unavailable"
        bodies.append(body)

    def book(body):
        response = stack.post("/bookings", body)
        assert response.status_code == 201, response.text
        return response.json()["bookingId"], body

    with ThreadPoolExecutor(8) as pool:
        booked = list(pool.map(book, bodies))

    def final(booking_id):
        return stack.get(f"/bookings/{booking_id}").json()

    deadline = time.monotonic() + 60
    pending = dict(booked)
    found = {}
    while pending and time.monotonic() < deadline:
        for booking_id in list(pending):
            got = final(booking_id)
            done = got["status"] == "confirmed" or (
                got["status"] == "cancelled"
                and all(r is not None for r in got["reservations"].values())
            )
            if done:
                found[booking_id] = got
                del pending[booking_id]
        time.sleep(0.2)
    assert not pending, f"{len(pending)} bookings unfinished after 60 s\n{stack.log()[-3000:]}"

    released = stack.query("SELECT topic, data FROM workflow_event WHERE topic LIKE '%.released'")
    released_ids = sorted(json.loads(data)["reservationId"] for _, data in released)
    assert len(released_ids) == len(set(released_ids)), "a reservation released twice"
    expected_releases = []
    for booking_id, body in booked:
        got = found[booking_id]
        refused = [item for item in ITEMS if body[item] == "unavailable"]
        if not refused:
            assert got["status"] == "confirmed" and got["reason"] is None
            assert {r["status"] for r in got["reservations"].values()} == {"reserved"}
            continue
        (item,) = refused
        assert got["status"] == "cancelled", got
        assert got["reason"] == f"{item} 'unavailable' is unavailable"
        assert got["reservations"][item] == {"status": "failed", "reservationId": None}
        for other in ITEMS:
            if other != item:
                assert got["reservations"][other]["status"] == "released", got
                expected_releases.append(got["reservations"][other]["reservationId"])
    assert released_ids == sorted(expected_releases)
    confirmed = stack.query("SELECT COUNT(*) FROM workflow_event WHERE topic = 'booking.confirmed'")
    assert confirmed[0][0] == sum(1 for _, body in booked if "unavailable" not in body.values())
