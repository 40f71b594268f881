"""The one owner of delivery state.

Every write of a delivery's life goes through ``store``: record an emit (or a cron slot,
or a replay), claim, renew a lease, record an outcome with its retry decision, bury,
release, cancel, and the wake-up marks. Its implementation is chosen once, by the
vendor of the database the runtime's models live on, the way Django picks a database
backend: ``DeliveryStore`` over the ORM, or ``PostgresStore`` with the busiest writes
as single statements.

    from workflow.store import store
    claims = store.claim([7, 8], worker="host:123/45")

The store never calls up into the bus or the queue: what should be woken, it returns.
"""

from django.db import connections, router

from ..models import Delivery
from .orm import DeliveryStore
from .postgresql import PostgresStore
from .records import Cancelled, Claim, Outcome, Recorded

__all__ = ["Cancelled", "Claim", "DeliveryStore", "Outcome", "Recorded", "store"]

BACKENDS = {"postgresql": PostgresStore}
_chosen: dict[str, DeliveryStore] = {}


def store_for(alias=None):
    """The store of database ``alias`` (by default, the one Delivery is written to)."""
    alias = alias or router.db_for_write(Delivery)
    vendor = connections[alias].vendor
    if vendor not in _chosen:
        _chosen[vendor] = BACKENDS.get(vendor, DeliveryStore)()
    return _chosen[vendor]


class _Store:
    """``store.claim(...)`` is ``store_for().claim(...)``: chosen on first use, after
    the settings are read (like ``django.db.connection``)."""

    def __getattr__(self, name):
        return getattr(store_for(), name)

    def __repr__(self):
        return f"<store: {type(store_for()).__name__}>"


store = _Store()
