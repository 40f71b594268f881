"""Commits its work, then, after the commit and before its run is recorded, hands the
database to the test: writes ``committed-<id>`` in PROBE_DIR and waits (10 s at most)
for ``locked-<id>``, which the test writes once it holds the database's write lock."""

import os
import time
from pathlib import Path

from django.db import transaction
from rest_framework import serializers

from workflow.steps import ApiStep


class CommittedSerializer(serializers.Serializer):
    id = serializers.RegexField(r"^[a-z0-9-]{1,40}$")


config = ApiStep(
    name="ProbeCommitted",
    description="Commits, then lets the test lock the database before its run is recorded",
    method="POST",
    path="/probe/committed",
    flows=["probe"],
    body_schema=CommittedSerializer,
)


def handler(request, ctx):
    item = request.body["id"]
    ctx.state.set("probe-committed", item, True)
    transaction.on_commit(lambda: wait_for_lock(item))  # runs right after the commit
    return {"status": 201, "body": {"id": item}}


def wait_for_lock(item):
    probe = Path(os.environ["PROBE_DIR"])
    (probe / f"committed-{item}").touch()
    deadline = time.monotonic() + 10
    while not (probe / f"locked-{item}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
