"""Fixtures shared by the workflow unit tests."""

import pytest

from workflow import queue


@pytest.fixture
def enqueued(monkeypatch):
    """The delivery ids passed to ``queue.enqueue`` (no job is sent)."""
    ids = []

    def enqueue(delivery_ids):
        ids.extend(delivery_ids)
        return list(delivery_ids)

    monkeypatch.setattr(queue, "enqueue", enqueue)
    return ids


@pytest.fixture
def new_pool():
    """``new_pool(threads)``: a worker's HandlerPool in this process, closed (its threads
    ended, their connections closed) when the test ends. It may not retire the test
    process: ``pool.retired`` records each time it would."""
    from workflow import executor

    made = []

    def make(threads):
        pool = executor.HandlerPool(threads, worker="test:1/1")
        pool.retired = []
        pool.retire = lambda: pool.retired.append(True)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()
