"""A user's own mqueue hook that regenerates charts, as django-chartflo's documentation shows."""

from django.core.management import call_command


def save(event, conf):
    if event.event_class.startswith("User"):
        call_command("gen", "users", quiet=True)
