import django.db.models.functions.datetime
from django.db import migrations, models


def remove_capture(apps, schema_editor):
    """Before the change log goes, the triggers that write to it go (or every write fails)."""
    from chartbuild.capture import triggers as capture

    capture.remove(schema_editor.connection)


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
        migrations.CreateModel(
            name="Consumer",
            fields=[
                ("name", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("events", models.BigIntegerField(default=0)),
                ("capture", models.BigIntegerField(default=0)),
                ("seen", models.DateTimeField()),
            ],
            options={
                "verbose_name": "change consumer",
                "db_table": "chartbuild_consumer",
            },
        ),
        migrations.RunPython(migrations.RunPython.noop, remove_capture, elidable=False),
    ]
