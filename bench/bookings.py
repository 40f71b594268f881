"""Saga latency: from POST /bookings returning to the booking `confirmed`, one booking
at a time on an idle stack.

    python bench/bookings.py [--samples 50] [--configs sqlite,pg-redis]
    python bench/bookings.py --quick

Starts `manage.py runserver` as the README does, on SQLite, then on PostgreSQL with
django-q2's Redis broker, books trips one after another and polls
`GET /bookings/:bookingId` every 10 ms until it says `confirmed`.

The path: booking.started is delivered to the three reservations side by side (each
sleeps 0.3 s, bookings.services.RESERVE_SECONDS); their *.reserved events go to the
join (ConfirmBooking), whose booking.confirmed goes to UpdateBooking, which records it.
The baseline is the flow's floor, 0.3 s, the slowest reservation: no runtime can
confirm a booking sooner. The ratio is the median over that floor; what is above it is
the three hops after the reservations (reserved -> join -> confirmed -> recorded) and
the first one before them.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import available, configuration, in_child, loadavg, machine, percentile  # noqa: E402
from bench.stack import Stack  # noqa: E402

FLOOR = 0.3  # bookings.services.RESERVE_SECONDS
POLL = 0.01


def sample(stack, n):
    """Seconds from the POST returning to `confirmed`, as a client polling every 10 ms
    sees it; and seconds the POST took."""
    body = {"customer": f"Customer {n}", "flight": "LH 1", "hotel": "Ritz", "car": "Mini"}
    started = time.monotonic()
    response = stack.post("/bookings", body)
    assert response.status_code == 201, response.text
    booking_id = response.json()["bookingId"]
    returned = time.monotonic()
    while stack.get(f"/bookings/{booking_id}").json()["status"] != "confirmed":
        if time.monotonic() - returned > 30:
            raise TimeoutError(f"{booking_id} not confirmed after 30 s")
        time.sleep(POLL)
    return time.monotonic() - returned, returned - started


def child(config, samples):
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-bookings-{config}-"))
    with configuration(config, workdir) as env, Stack(workdir, env=env) as stack:
        for n in range(3):  # warm up
            sample(stack, f"warm{n}")
        results = [sample(stack, n) for n in range(samples)]
        return {
            "config": config,
            "confirmed": [seen for seen, _ in results],
            "post": [post for _, post in results],
            "load": loadavg(),
        }


def report(result):
    name, times = result["config"], result["confirmed"]
    median = statistics.median(times)
    print(
        f"{name:9} saga, POST returned -> confirmed (n={len(times)}): median {median:.3f} s, "
        f"p95 {percentile(times, 95):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s; "
        f"POST median {statistics.median(result['post']) * 1000:.0f} ms"
    )
    print(
        f"{name:9} baseline: the flow's floor {FLOOR:.3f} s (the slowest reservation's "
        f"sleep); ratio median / floor = {median / FLOOR:.3f}x   [{result['load']}]"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--configs", default="sqlite,pg-redis")
    parser.add_argument("--quick", action="store_true", help="5 samples, SQLite only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.samples, args.configs = 5, "sqlite"
    if args.child:
        print(json.dumps(child(args.child, args.samples)))
        return
    print(machine())
    for config in available(args.configs.split(",")):
        argv = ["--child", config, "--samples", str(args.samples)]
        report(in_child(__file__, argv, {"DJANGO_SETTINGS_MODULE": "config.settings"}))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()
