"""Partial indexes of pending deliveries by due time and running ones by visibility
deadline: the sweeper's queries stay fast at millions of finished deliveries, on SQLite
too (see bench/growth.py). Built concurrently on PostgreSQL, as in 0004."""

from importlib import import_module

from django.db import migrations, models

AddIndexOnline = import_module("workflow.migrations.0004_delivery_fifo_live").AddIndexOnline


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("workflow", "0004_delivery_fifo_live"),
    ]

    operations = [
        AddIndexOnline(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["due_at"],
                name="workflow_delivery_due",
            ),
        ),
        AddIndexOnline(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("status", "running")),
                fields=["claimed_until"],
                name="workflow_delivery_expiring",
            ),
        ),
    ]
