"""``manage.py chartbuild status``: who builds, the last export, the lag."""

import io
import os
import re
import time

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from chartbuild.live import leader

pytestmark = pytest.mark.django_db(transaction=True)


def status() -> str:
    out = io.StringIO()
    call_command("chartbuild", "status", stdout=out)
    return out.getvalue()


def lag(text: str) -> int:
    return int(re.search(r"^lag: (\d+) s", text, re.M).group(1))


def test_the_lag_grows_while_no_builder_runs_and_a_build_ends_it(build, settings):
    settings.CHARTBUILD_STATE_DIR = str(build.state)
    before = status()
    assert "last export that read new changes: " in before and "s ago) by " in before
    assert lag(before) == 0 and "no committed change waits to be published" in before
    User.objects.create(username="waiting")
    time.sleep(1.1)
    first = lag(status())
    time.sleep(1.1)
    assert lag(status()) > first >= 1
    assert build.run().returncode == 0
    assert lag(status()) == 0


def test_a_change_exported_and_not_yet_published_is_lag(tmp_path, settings):
    from tests.doit import Build, building, wait_until

    build = Build(tmp_path, generators=["tests.generators.sleepy"])
    assert build.run().returncode == 0
    settings.CHARTBUILD_STATE_DIR = str(build.state)
    User.objects.create(username="waiting")
    build.env["CHARTBUILD_TEST_SLEEP"] = "4"
    process = build.start()
    try:
        wait_until(lambda: building(build), timeout=30)
        time.sleep(2.5)  # exported, and drawing its number for a while yet
        during = status()
        assert lag(during) >= 2, during
        assert "the oldest change waiting was committed at" in during
    finally:
        result = build.result(process, *process.communicate(timeout=300), True)
    assert result.returncode == 0 and result.charts == {"sleepy.sleepy"}
    assert lag(status()) == 0


def test_before_any_export_the_lag_is_unknown(settings, tmp_path):
    settings.CHARTBUILD_STATE_DIR = str(tmp_path)
    text = status()
    assert "last export: none yet" in text and "lag: unknown (no build has exported yet)" in text


def test_without_an_elected_leader_it_reports_the_state_directorys_build(build, settings):
    settings.CHARTBUILD_STATE_DIR = str(build.state)
    settings.CHARTBUILD_LEADER = "file"
    assert "builds: one at a time per state directory; here: no build runs now" in status()


def test_it_names_the_leader(postgres, build):
    assert "leader: nobody (no long-lived builder runs)" in status()
    lead = leader.Leadership("default", say=lambda text: None)
    assert lead.lead()
    try:
        assert f"leader: builder pid {os.getpid()} on " in status()
    finally:
        lead.release()
