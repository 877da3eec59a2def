import django.db.models.functions.datetime
from django.db import migrations, models


def remove_capture(apps, schema_editor):
    """Before the change log goes, the triggers that write to it go (or every write fails)."""
    from chartbuild import capture

    capture.for_connection(schema_editor.connection).remove()


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Change",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("table_name", models.CharField(max_length=128)),
                (
                    "at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
            options={
                "verbose_name": "captured change",
                "db_table": "chartbuild_change",
            },
        ),
        migrations.RunPython(migrations.RunPython.noop, remove_capture, elidable=False),
    ]
