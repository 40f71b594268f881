"""The supervised delivery lifecycle: who holds a lease (``claimed_by``), a cancelled
status, each event's depth in its trace and the event that caused it, and at most one
live or succeeded replay per delivery.

Written for an upgrade while the old workers run: the new columns have database
defaults (old code inserts rows without them), and on PostgreSQL the replay
constraint's unique index is built concurrently, as the indexes of 0004 and 0005.
"""

import django.db.models.deletion
from django.db import migrations, models


class AddConstraintOnline(migrations.AddConstraint):
    """AddConstraint of a partial unique constraint, its index built concurrently where
    the database can (PostgreSQL)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            sql = str(self.constraint.create_sql(model, schema_editor))
            schema_editor.execute(sql.replace("CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY", 1))


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("workflow", "0005_delivery_due_expiring"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="claimed_by",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.AddField(
            model_name="event",
            name="caused_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="workflow.event",
            ),
        ),
        migrations.AddField(
            model_name="event",
            name="depth",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("dead", "Dead"),
                    ("cancelled", "Cancelled"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        AddConstraintOnline(
            model_name="delivery",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("replay_of__isnull", False),
                    ("status__in", ["pending", "running", "succeeded"]),
                ),
                fields=("replay_of",),
                name="workflow_delivery_one_live_replay",
            ),
        ),
    ]
