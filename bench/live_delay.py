"""Live log delay: from a step's log call to the line arriving on a workbench page.

    python bench/live_delay.py [--users 20] [--quick]

Starts `manage.py runserver` as the README does (embedded workers), logs in to the
admin in headless Chromium (Debian's, /usr/bin/chromium), opens the Logs page, and
registers users one at a time. For every line that arrives, the delay is the browser's
clock at arrival minus the line's time (taken at the log call, same machine clock).
Measured on the embedded default (in-memory layer: the web server relays new rows from
the database) and, when Redis is up, with channels-redis (workers send the lines).

The baseline, same run: the delay of the HTTP response that carries the log call's
request (POST /users/register, from send to response), i.e. what "at once" costs here.
"""

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-pass-12345"
REDIS_URL = "redis://127.0.0.1:6379/9"  # the benchmarks use Redis dbs 8 and 9 only

COLLECT = """() => {
    window.delays = [];
    document.addEventListener("wb:message", (event) => {
        const m = event.detail;
        if (m.kind === "log") window.delays.push(Date.now() - Date.parse(m.time));
    });
}"""


def redis_up():
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(browser, layer, users):
    env = {}
    if layer == "redis":
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        env["REDIS_URL"] = REDIS_URL
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-live-")), env=env, reload=False)
    stack.manage("migrate", "--noinput", "-v0")
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser('bench', 'b@example.com', {PASSWORD!r})",
    )
    with stack:
        page = browser.new_page()
        page.goto(f"{stack.base}/admin/login/?next=/admin/workbench/logs/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#wb-live[data-state=on]")
        page.evaluate(COLLECT)
        posts = []
        for n in range(users):
            body = {
                "name": f"User {n}",
                "email": f"u{n}-{time.time_ns()}@example.com",
                "password": "securepass123",
            }
            started = time.monotonic()
            assert stack.post("/users/register", body).status_code == 201
            posts.append((time.monotonic() - started) * 1000)
            time.sleep(1.6)  # the flow's lines arrive (the email step sleeps 1 s)
        delays = page.evaluate("window.delays")
        page.close()
    return delays, posts


def report(layer, delays, posts, users):
    expected = users * 10  # lines per registration in the tutorial flow
    print(
        f"{layer:10} lines {len(delays):4}/{expected}  "
        f"median {statistics.median(delays):6.1f} ms  p99 {percentile(delays, 99):6.1f} ms  "
        f"max {max(delays):6.1f} ms   baseline POST median {statistics.median(posts):5.1f} ms"
        f"  ratio {statistics.median(delays) / statistics.median(posts):4.1f}x"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 users, embedded default only")
    args = parser.parse_args()
    layers = ["in-memory"] if args.quick else ["in-memory"] + (["redis"] if redis_up() else [])
    users = 3 if args.quick else args.users
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for layer in layers:
            delays, posts = measure(browser, layer, users)
            report(layer, delays, posts, users)
        browser.close()


if __name__ == "__main__":
    main()
