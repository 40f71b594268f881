"""What reaches the broker: wake-up jobs carrying delivery ids and no user data.

With the ORM broker as config/settings.py configures it (not sync mode), registering a
user puts django-q2 jobs in the OrmQ table, after the commit, for the emit's two
deliveries. Each job names ``workflow.executor.wake`` with integer arguments, the
delivery ids; the user's name, email and password are in no job, signed, compressed
or not.
"""

import pickle

import pytest
from django.conf import settings
from django_q import core_signing
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from rest_framework.test import APIClient

from workflow.models import Delivery
from workflow.registry import registry

NAME = "Zebulon Quartermaine"
EMAIL = "zebulon.quartermaine@example.org"
PASSWORD = "Tr0ub4dor&3-horse-battery-staple"


class RawBytes:
    """A core_signing serializer that hands back the (unsigned, decompressed) bytes."""

    def loads(self, data):
        return data


@pytest.fixture
def orm_broker(monkeypatch):
    """The broker of config/settings.py's Q_CLUSTER, never sync mode (for this test only)."""
    assert "orm" in settings.Q_CLUSTER
    monkeypatch.setattr(Conf, "SYNC", False)
    broker = get_broker()
    assert isinstance(broker, ORM)
    return broker


@pytest.mark.django_db(transaction=True)
def test_broker_jobs_carry_only_delivery_ids(orm_broker):
    response = APIClient().post(
        "/users/register", {"name": NAME, "email": EMAIL, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201, response.content

    deliveries = set(Delivery.objects.values_list("pk", flat=True))
    jobs = list(OrmQ.objects.all())
    assert len(deliveries) == len(registry.subscribers("user.registered"))
    assert 1 <= len(jobs) <= len(deliveries)
    assert orm_broker.queue_size() == len(jobs)

    woken = set()
    for job in jobs:
        task = SignedPackage.loads(job.payload)
        assert task["func"] == "workflow.queue.deliver"
        assert task["args"] and all(type(arg) is int for arg in task["args"])
        assert not task.get("kwargs")
        woken.update(task["args"])

        raw = core_signing.loads(
            job.payload, key=Conf.SECRET_KEY, salt=Conf.PREFIX, serializer=RawBytes
        )
        assert pickle.loads(raw) == task  # raw is the whole job, decompressed
        for secret in (NAME, EMAIL, PASSWORD):
            assert secret not in job.payload
            assert secret.encode() not in raw
            assert secret not in repr(task)
    assert woken == deliveries
