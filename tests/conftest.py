"""Shared fixtures.

``steps`` swaps the global step registry for an empty one for the test, so a test
declares exactly the steps it needs:

    def test_x(steps):
        steps.add(EventStep(name="A", subscribes=["t"]), handler_a)

``shipped_steps`` does the same with the steps the project ships (tests/shipped.py), for
tests about the shipped project that read the global registry (commands, checks, pages):
a step a reader adds to the project is not among them.
"""

import os

import pytest
from django.urls import get_resolver

from tests.shipped import use_shipped_steps
from workflow.registry import Registry, registry

# The framework's test fixtures (``flow``: a FlowTester); see workflow/testing.py.
pytest_plugins = ["workflow.testing"]


@pytest.fixture
def steps():
    # The API steps' URL patterns are built once, from the registry, when the URLconf is
    # first loaded: load it now, from the project's steps, not from this test's.
    get_resolver().urlconf_module  # noqa: B018
    saved = dict(registry.__dict__)
    registry.__dict__.update(Registry().__dict__)
    try:
        yield registry
    finally:
        registry.__dict__.clear()
        registry.__dict__.update(saved)


@pytest.fixture
def shipped_steps(steps):
    """The global registry holding the shipped steps only, each loaded from its module."""
    use_shipped_steps(steps)
    return steps


# The files that take longest, first: with ``-n`` (pytest-xdist, one file per worker at
# a time) the others fill in beside them instead of leaving one worker alone at the end.
SLOW_FIRST = (
    "tests/docs/test_tutorial.py",
    "tests/test_bench_quick.py",
    "tests/e2e/test_conformance.py",
    "tests/e2e/test_supervision.py",
    "tests/e2e/test_postgres.py",
    "tests/e2e/test_crashes.py",
    "tests/e2e/test_hosts.py",
    "tests/test_on_postgres.py",
)


def pytest_collection_modifyitems(items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


def pytest_runtestloop(session):
    """Start the run of the store's tests on PostgreSQL (tests/test_on_postgres.py) with
    the session, when it is among the tests to run: it goes on beside the others."""
    if session.config.option.collectonly or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # under pytest-xdist, the test starts it where it runs
    if any(item.nodeid.startswith("tests/test_on_postgres.py::") for item in session.items):
        from tests import test_on_postgres

        test_on_postgres.start()


def pytest_sessionfinish(session):
    from tests import test_on_postgres

    test_on_postgres.stop()
