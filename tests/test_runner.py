"""Builds run in this process (doit auto, gencharts, gen, the hook): chartbuild.build.runner."""

from __future__ import annotations

import multiprocessing

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_build_started_in_a_worker_process_runs(monkeypatch, tmp_path):
    """A task queue's worker (django-q, huey, celery) is a multiprocessing child: its
    ``call_command("gen", ...)`` builds like any other process's."""
    from tests import worker
    from tests.doit import database_url

    User.objects.create(username="ada")
    monkeypatch.setenv("DATABASE_URL", database_url())  # the test database, for the child
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    overrides = {
        "CHARTBUILD_OUTPUT_DIR": tmp_path / "charts",
        "CHARTBUILD_STATE_DIR": tmp_path / "state",
        "CHARTBUILD_PARALLEL": 1,
    }
    child = context.Process(target=worker.gen, args=(queue, overrides))
    child.start()
    said = queue.get(timeout=120)
    child.join(30)
    assert said == "built"
    assert (tmp_path / "charts" / "users" / "total_users.json").exists()
