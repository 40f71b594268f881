"""docs/bookings.md, run as the tutorial is (tests/docs/test_tutorial.py): every command
of its ```bash blocks, in order, in a copy of the project with a database of its own,
each printing what the page shows under it."""

import pytest

from tests.docs.markdown import commands
from tests.docs.reading import ROOT, RUNSERVER, run_commands

pytestmark = pytest.mark.e2e
PAGE = ROOT / "docs" / "bookings.md"


def test_the_bookings_pages_commands_run_and_print_what_it_shows(reader):
    steps = commands(PAGE.read_text())
    assert len(steps) >= 6, "the page's commands were not found"
    assert [s.text for s in steps].count(RUNSERVER) == 1
    run_commands(reader, steps)
