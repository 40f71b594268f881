"""Start times of handlers and tasks, appended to a file (``BENCH_STAMPS``) that the
benchmark reads back: the same cheap write for a step and for a plain django-q2 task."""

import os
import time


def stamp(sent):
    """Append ``sent`` and now (wall clock, seconds) to the stamps file."""
    now = time.time()
    with open(os.environ["BENCH_STAMPS"], "a") as file:
        file.write(f"{sent!r} {now!r}\n")
