"""The trip-booking saga (bookings/steps) against runserver and its real cluster, on
the embedded default (SQLite) and on PostgreSQL with a second cluster sharing the work:

- 100 bookings at once, a third of them with one item unavailable: each ends in the
  right state, and the compensation runs once per reservation to release;
- a booking whose car never answers (ReserveCar paused) times out, and its flight and
  hotel are released; the car, once resumed, is released too.
"""

import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from bench.stack import Stack
from tests.e2e.probing import wait_for
from tests.e2e.test_postgres import PG, reachable, run_sql

pytestmark = pytest.mark.e2e
ITEMS = ("flight", "hotel", "car")
JOIN_TIMEOUT = 8  # seconds (BOOKINGS_JOIN_TIMEOUT): short for the timeout test, long
# enough that no booking of the burst times out while two cores are busy


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not reachable(5432), reason="PostgreSQL is not running on 127.0.0.1:5432"
            ),
        ),
    ],
)
def bookings(request, tmp_path_factory):
    """runserver on SQLite; or on PostgreSQL, with a second cluster (``qcluster``)."""
    workdir = tmp_path_factory.mktemp(f"bookings-{request.param}")
    env = {"BOOKINGS_JOIN_TIMEOUT": str(JOIN_TIMEOUT)}
    if request.param == "sqlite":
        with Stack(workdir, env=env, reload=False) as stack:
            stack.second = None
            yield stack
        return
    name = f"workflow_e2e_{uuid.uuid4().hex[:10]}"
    run_sql(f"CREATE DATABASE {name}")
    try:
        with Stack(workdir, env=env, database_url=f"{PG}/{name}", reload=False) as stack:
            stack.second = stack.spawn("qcluster", log_name="qcluster2.log")
            try:
                yield stack
            finally:
                stack.second.terminate()
                stack.second.wait(timeout=15)
    finally:
        run_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def book(stack, body):
    response = stack.post("/bookings", body)
    assert response.status_code == 201, response.text
    return response.json()["bookingId"]


def booking(stack, booking_id):
    return stack.get(f"/bookings/{booking_id}").json()


def released(stack, booking_ids):
    """The reservation ids on ``*.released`` events of ``booking_ids``."""
    rows = stack.query("SELECT data FROM workflow_event WHERE topic LIKE ?", ("%.released",))
    found = [json.loads(data) if isinstance(data, str) else data for (data,) in rows]
    return sorted(d["reservationId"] for d in found if d["bookingId"] in booking_ids)


def unfinished(stack, pending):
    """What an unfinished booking looks like: its answer, and its deliveries."""
    lines = [f"{len(pending)} bookings unfinished after 60 s"]
    for booking_id in pending:
        lines.append(json.dumps(booking(stack, booking_id)))
        rows = stack.query(
            "SELECT d.id, d.step_name, d.status, d.attempts, d.message_group, d.enqueued_at, "
            "d.due_at, d.last_error, e.topic FROM workflow_delivery d "
            "JOIN workflow_event e ON e.id = d.event_id WHERE e.data::text LIKE ?"
            if stack.second is not None
            else "SELECT d.id, d.step_name, d.status, d.attempts, d.message_group, d.enqueued_at, "
            "d.due_at, d.last_error, e.topic FROM workflow_delivery d "
            "JOIN workflow_event e ON e.id = d.event_id WHERE e.data LIKE ?",
            (f"%{booking_id}%",),
        )
        lines += [repr(row) for row in rows]
    return "\n".join(lines) + "\n" + stack.log()[-2000:]


def test_100_concurrent_bookings_each_end_confirmed_or_cancelled_with_releases_once(bookings):
    stack = bookings
    bodies = []
    for n in range(100):
        body = {"customer": f"Customer {n}", "flight": f"F{n}", "hotel": f"H{n}", "car": f"C{n}"}
        if n % 3 == 0:
            body[random.choice(ITEMS)] = "unavailable"
        bodies.append(body)
    with ThreadPoolExecutor(8) as pool:
        booked = list(zip(pool.map(lambda body: book(stack, body), bodies), bodies, strict=True))

    deadline = time.monotonic() + 60
    pending = dict(booked)
    found = {}
    while pending and time.monotonic() < deadline:
        for booking_id in list(pending):
            got = booking(stack, booking_id)
            done = got["status"] == "confirmed" or (
                got["status"] == "cancelled"
                and all(r is not None for r in got["reservations"].values())
            )
            if done:
                found[booking_id] = got
                del pending[booking_id]
        time.sleep(0.2)
    assert not pending, unfinished(stack, pending)

    expected_releases = []
    for booking_id, body in booked:
        got = found[booking_id]
        refused = [item for item in ITEMS if body[item] == "unavailable"]
        if not refused:
            assert got["status"] == "confirmed" and got["reason"] is None, got
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

    ids = set(found)
    # The compensation (ReleaseReservation) runs after the saga asked for it.
    wait_for(lambda: len(released(stack, ids)) >= len(expected_releases), 30, "releases", stack)
    assert released(stack, ids) == sorted(expected_releases)  # each once, none other
    runs = stack.query(
        "SELECT COUNT(*), COUNT(DISTINCT delivery_id) FROM workflow_run "
        "WHERE step_name = 'ReleaseReservation'"
    )
    assert runs[0] == (len(expected_releases), len(expected_releases))
    confirmed = stack.query("SELECT COUNT(*) FROM workflow_event WHERE topic = 'booking.confirmed'")
    assert confirmed[0][0] == sum(1 for _, body in booked if "unavailable" not in body.values())
    if stack.second is not None:  # both clusters ran the saga's steps
        theirs = {p.pid for p in psutil.Process(stack.second.pid).children(recursive=True)}
        workers = stack.query(
            "SELECT DISTINCT worker FROM workflow_run WHERE step_name = 'UpdateBooking'"
        )
        pids = {int(worker.split(":")[1].split("/")[0]) for (worker,) in workers}
        assert pids & theirs and pids - theirs, "both clusters ran UpdateBooking"


def test_a_booking_whose_car_never_answers_times_out_and_releases_the_rest(bookings):
    """ReserveCar is paused: past the join's timeout the booking is cancelled and the
    flight and hotel released; once resumed, the late car is released too."""
    stack = bookings
    stack.manage("pause", "ReserveCar")
    try:
        booking_id = book(
            stack, {"customer": "Late Car", "flight": "LC1", "hotel": "LC2", "car": "LC3"}
        )
        started = time.monotonic()

        def cancelled():
            got = booking(stack, booking_id)
            return got if got["status"] == "cancelled" else None

        got = wait_for(cancelled, JOIN_TIMEOUT + 15, "the join's timeout", stack)
        assert time.monotonic() - started >= JOIN_TIMEOUT - 1
        assert got["reason"] == "timed out waiting for car"
        assert got["reservations"]["car"] is None
        made = [got["reservations"][item]["reservationId"] for item in ("flight", "hotel")]
        assert {got["reservations"][item]["status"] for item in ("flight", "hotel")} == {"released"}
        wait_for(lambda: released(stack, {booking_id}) == sorted(made), 15, "releases", stack)
    finally:
        stack.manage("resume", "ReserveCar")

    def car_released():
        got = booking(stack, booking_id)
        car = got["reservations"]["car"]
        return got if car and car["status"] == "released" else None

    got = wait_for(car_released, 20, "the late car released", stack)
    assert got["status"] == "cancelled"
    late = got["reservations"]["car"]["reservationId"]
    wait_for(lambda: late in released(stack, {booking_id}), 15, "the car's release", stack)
    assert released(stack, {booking_id}) == sorted([*made, late])
