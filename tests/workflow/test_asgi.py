"""The ASGI handler runs Django's middleware chain in one hop to a thread (not one per
middleware method), and answers as Django's own does."""

import pytest
from asgiref.sync import SyncToAsync, async_to_sync
from channels.testing import HttpCommunicator
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler

from workflow.asgi import ASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


async def get(handler, path, monkeypatch):
    """One GET through ``handler``: its response and how many sync-to-async hops it took."""
    hops = []
    real = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    communicator = HttpCommunicator(handler, "GET", path, headers=[(b"host", b"127.0.0.1")])
    response = await communicator.get_response(timeout=10)
    monkeypatch.setattr(SyncToAsync, "__call__", real)
    return response, hops


def test_a_request_takes_a_few_hops_where_django_takes_one_per_middleware(monkeypatch):
    ours, our_hops = async_to_sync(get)(ASGIHandler(), "/users/nobody/status", monkeypatch)
    django, django_hops = async_to_sync(get)(
        DjangoASGIHandler(), "/users/nobody/status", monkeypatch
    )
    assert ours["status"] == django["status"] == 404
    assert ours["body"] == django["body"]
    # The middleware's headers are there all the same (XFrameOptionsMiddleware's).
    assert (b"X-Frame-Options", b"DENY") in ours["headers"]
    assert len(our_hops) <= 4, our_hops  # the chain, and Django's request signals
    assert len(django_hops) >= len(our_hops) + 8, django_hops
