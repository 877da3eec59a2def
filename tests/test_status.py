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
    assert lag(before) == 0 and "no committed change waits" in before
    User.objects.create(username="waiting")
    time.sleep(1.1)
    first = lag(status())
    time.sleep(1.1)
    assert lag(status()) > first >= 1
    assert build.run().returncode == 0
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
