"""Shared fixtures.

``steps`` swaps the global step registry for an empty one for the test, so a test
declares exactly the steps it needs:

    def test_x(steps):
        steps.add(EventStep(name="A", subscribes=["t"]), handler_a)
"""

import pytest

from workflow.registry import Registry, registry

# The framework's test fixtures (``flow``: a FlowTester); see workflow/testing.py.
pytest_plugins = ["workflow.testing"]


@pytest.fixture
def steps():
    saved = dict(registry.__dict__)
    registry.__dict__.update(Registry().__dict__)
    try:
        yield registry
    finally:
        registry.__dict__.clear()
        registry.__dict__.update(saved)
