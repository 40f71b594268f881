"""The users app's tests drive its flow with workflow.testing (``flow``, ``call_handler``)."""

import pytest


@pytest.fixture
def flow(flow):
    """workflow.testing's ``flow`` without the tutorial's simulated waits (the welcome
    email's 1 s, the account setup's 0.8 s): ``flow.slept`` records them instead."""
    flow.sleep = False
    return flow
