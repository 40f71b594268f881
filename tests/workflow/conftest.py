"""Fixtures shared by the workflow unit tests."""

import types

import pytest
from django.urls import path
from rest_framework.test import APIClient

from workflow import queue
from workflow.views import view_for


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def serve(settings):
    """``serve(*registered)``: the given registered API steps (several may share a path),
    served from a URLconf of their own for the test."""

    def serve(*registered):
        by_route = {}
        for step in registered:
            by_route.setdefault(step.config.route, {})[step.config.method] = step
        urlconf = types.ModuleType("test_urlconf")
        urlconf.urlpatterns = [path(route, view_for(s)) for route, s in by_route.items()]
        settings.ROOT_URLCONF = urlconf

    return serve


@pytest.fixture
def jobs_after_commit(monkeypatch):
    """An emit's wake-up jobs are sent after its commit, as with the Redis broker: in a
    test's transaction, which never commits, emits wake nothing, and what the test
    drives (the sweeper, a recorder, a replay) is all that is woken."""
    monkeypatch.setattr(queue, "jobs_share_the_transaction", lambda: False)


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
