"""Builds run in this process (doit auto, gencharts, gen, the hook): chartbuild.build.runner."""

from __future__ import annotations

import multiprocessing

import pytest
from django.contrib.auth.models import User
from django.db import connections

pytestmark = pytest.mark.django_db(transaction=True)


def _gen_in_child(queue) -> None:
    from django.core.management import call_command

    from chartbuild.build import render

    connections.close_all()  # the parent's, inherited by fork: the child opens its own
    try:
        call_command("gen", "users")
        queue.put("built")
    except BaseException as exc:
        queue.put(f"{type(exc).__name__}: {exc}")
    finally:
        render.shutdown()


def test_a_build_started_in_a_worker_process_runs(settings, tmp_path):
    """A task queue's worker (django-q, huey, celery) is a multiprocessing child: its
    ``call_command("gen", ...)`` builds like any other process's."""
    settings.CHARTBUILD_OUTPUT_DIR = tmp_path / "charts"
    settings.CHARTBUILD_STATE_DIR = tmp_path / "state"
    settings.CHARTBUILD_PARALLEL = 1
    User.objects.create(username="ada")
    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_gen_in_child, args=(queue,))
    child.start()
    said = queue.get(timeout=120)
    child.join(30)
    assert said == "built"
    assert (tmp_path / "charts" / "users" / "total_users.json").exists()
