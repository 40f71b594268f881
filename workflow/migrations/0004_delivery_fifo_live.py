"""A partial index of the live (pending, running) deliveries of fifo groups.

On PostgreSQL it is built with CREATE INDEX CONCURRENTLY, so workers keep claiming and
finishing deliveries while it builds (a plain CREATE INDEX would hold their writes for
as long as it takes on a large table); hence a migration outside a transaction.
"""

from django.db import migrations, models


class AddIndexOnline(migrations.AddIndex):
    """AddIndex, built concurrently where the database can (PostgreSQL)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("workflow", "0003_trace"),
    ]

    operations = [
        AddIndexOnline(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(
                    ("message_group__isnull", False), ("status__in", ["pending", "running"])
                ),
                fields=["step_name", "message_group", "id"],
                name="workflow_delivery_fifo_live",
            ),
        ),
    ]
