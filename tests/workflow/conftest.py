"""Fixtures shared by the workflow unit tests."""

import pytest

from workflow import bus


@pytest.fixture
def enqueued(monkeypatch):
    """The delivery ids passed to ``bus.enqueue`` (no job is sent)."""
    ids = []

    def enqueue(delivery_ids):
        ids.extend(delivery_ids)
        return list(delivery_ids)

    monkeypatch.setattr(bus, "enqueue", enqueue)
    return ids
