"""docs/tutorial.md, run: every command of its ```bash blocks, in order, in a copy of the
project with a database of its own; each must exit 0 and print what the page shows
under it (``# ...`` lines; ``...`` stands for what varies). A command the page shows
refused (a ``# CommandError: ...`` line) must exit 1 instead.

As a reader would (tests/docs/reading.py): the only change made to the page's commands
is the port, a free one instead of 8000.
"""

import pytest

from tests.docs.markdown import commands
from tests.docs.reading import ROOT, RUNSERVER, run_commands

pytestmark = pytest.mark.e2e

TUTORIAL = ROOT / "docs" / "tutorial.md"
STARTSTEP = "python manage.py startstep users NotifyAdmin "
USERS_TESTS = "python -m pytest tests/users "
# The project's tests that read its whole registry or run `check` on it (the others
# declare their own steps): after "Add a step" they still pass, testing the shipped steps
# (tests/shipped.py) or any step added since. tests/test_fuzz.py, which fuzzes every API
# step, is left out for its time (15 s); NotifyAdmin is no API step.
WHOLE_REGISTRY_TESTS = (
    "tests/workflow/test_checks.py",
    "tests/test_production_settings.py",
    "tests/workflow/test_graph.py",
    "tests/workflow/test_commands_flows.py",
    "tests/workflow/test_commands_startstep.py",
    "tests/workflow/test_registry.py",
    "tests/workflow/test_asyncapi.py",
    "tests/workflow/test_openapi.py",
    "tests/workflow/test_payloads.py",
    "tests/workbench/test_pages.py",
    "tests/workbench/test_examples.py",
    "tests/test_home.py",
)


def test_the_tutorials_commands_run_and_print_what_it_shows(reader):
    """Every command, in order; among them, the users app's whole test suite runs after
    "Add a step" wrote NotifyAdmin (no test of the app pins the subscriber list). Then
    the project's tests that read its whole registry or run `check` pass there too."""
    steps = commands(TUTORIAL.read_text())
    assert len(steps) >= 20, "the tutorial's commands were not found"
    texts = [s.text for s in steps]
    assert texts.count(RUNSERVER) == 1
    added = next(i for i, text in enumerate(texts) if text.startswith(STARTSTEP))
    assert any(text.startswith(USERS_TESTS) for text in texts[added + 1 :])
    run_commands(reader, steps)
    assert (reader.project / "users" / "steps" / "notify_admin_step.py").is_file()
    assert not (ROOT / "users" / "steps" / "notify_admin_step.py").exists()
    done = reader.run(f"python -m pytest -q -p no:cacheprovider {' '.join(WHOLE_REGISTRY_TESTS)}")
    assert done.returncode == 0, f"after Add a step:\n{done.stdout}{done.stderr}"
