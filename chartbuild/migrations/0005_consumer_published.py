from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("chartbuild", "0004_build_state"),
    ]

    operations = [
        migrations.RenameField(
            model_name="consumer", old_name="events_read", new_name="events_published"
        ),
        migrations.RenameField(
            model_name="consumer", old_name="capture_read", new_name="capture_published"
        ),
    ]
