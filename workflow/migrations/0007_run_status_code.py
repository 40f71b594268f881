"""The HTTP status an API call answered with (``Run.status_code``), and the ``refused``
status of an API call answered with a 4xx.

Written for an upgrade while the old workers run: the new column is nullable (old code
inserts runs without it), and a new choice changes nothing in the database.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflow", "0006_delivery_lifecycle"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="status_code",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="run",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("refused", "Refused"),
                    ("failed", "Failed"),
                    ("interrupted", "Interrupted"),
                ],
                default="running",
                max_length=16,
            ),
        ),
    ]
