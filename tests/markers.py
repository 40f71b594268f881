"""Markers shared by test modules."""

import pytest
from django.db import connection


def postgresql_only(why):
    """Skip on SQLite, saying ``why`` the test needs PostgreSQL; the main run uses
    SQLite, and ``tests/test_on_postgres.py`` runs the test's module on PostgreSQL."""
    return pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason=f"PostgreSQL only (tests/test_on_postgres.py runs this module there): {why}",
    )
