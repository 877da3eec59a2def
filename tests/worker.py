"""What a task queue's worker process runs (a multiprocessing child): a build, from Django."""

from __future__ import annotations

import os
from typing import Any


def gen(queue: Any, settings: dict[str, Any]) -> None:
    """``call_command("gen", "users")`` in this new process; say how it went on ``queue``."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.conf import settings as django_settings
    from django.core.management import call_command

    from chartbuild.build import render

    for name, value in settings.items():
        setattr(django_settings, name, value)
    try:
        call_command("gen", "users")
        queue.put("built")
    except BaseException as exc:
        queue.put(f"{type(exc).__name__}: {exc}")
    finally:
        render.shutdown()
