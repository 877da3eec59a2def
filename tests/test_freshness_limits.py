"""Freshness limits: ``manage.py chartbuild freshness``, the lag of each chart against its
``max_lag``, and the Prometheus metrics, over real builds."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import subprocess
import sys
import time

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from chartbuild import chart
from chartbuild.declare import catalog
from chartbuild.declare.registry import ATTRIBUTE
from chartbuild.publish import freshness, outputs
from tests.doit import REPO

pytestmark = pytest.mark.django_db(transaction=True)


def freshness_report(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("chartbuild", "freshness", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def test_within_their_limits_every_chart_passes(served_build):
    code, text = freshness_report()
    assert code == 0, text
    assert "users.total_users" in text and "shop.revenue_per_month" in text
    assert "0 warn, 0 error" in text


def test_a_change_no_builder_publishes_is_an_error_once_over_the_limit(
    served_build, settings, tmp_path
):
    settings.CHARTBUILD_MAX_LAG = (0.5, 1.0)
    User.objects.create(username="waiting")  # no builder runs
    time.sleep(1.2)
    report = tmp_path / "freshness.json"
    code, text = freshness_report("--format", "json", "-o", str(report))
    assert code == 1, text
    data = json.loads(report.read_text())
    assert json.loads(text[: text.rindex("}") + 1]) == data  # stdout says the same
    by_task = {r["task"]: r for r in data["results"]}
    late = by_task["users.total_users"]
    assert late["status"] == "error" and late["lag"] > 1.0
    assert late["limit"] == {"warn": 0.5, "error": 1.0}
    assert late["oldest_pending"]["table"] == "auth_user"
    assert dt.datetime.fromisoformat(late["oldest_pending"]["at"]) <= dt.datetime.now(dt.UTC)
    assert late["last_build"]["built_at"] and late["last_build"]["failed_at"] is None
    assert by_task["shop.revenue_per_month"]["status"] == "pass"  # it reads no user
    assert data["summary"]["error"] == sum(r["status"] == "error" for r in data["results"])
    # --select keeps those asked for: a generator, or a pattern
    code, text = freshness_report("--select", "shop")
    assert code == 0 and "users." not in text, text
    code, text = freshness_report("--select", "users.total_*", "--format", "json")
    selected = json.loads(text[: text.rindex("}") + 1])["results"]
    assert code == 1 and [r["task"] for r in selected] == ["users.total_users"]
    # the build publishes the change: within the limit again
    assert served_build.run().returncode == 0
    code, text = freshness_report("--select", "users")
    assert code == 0, text


def test_without_a_database_it_cannot_tell(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "chartbuild", "freshness"],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing",
            "CHARTBUILD_STATE_DIR": str(tmp_path / "state"),
            "CHARTBUILD_OUTPUT_DIR": str(tmp_path / "charts"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "cannot read database 'default'" in done.stderr


def test_a_failing_chart_is_behind_since_its_first_failed_build(served_build, settings):
    settings.CHARTBUILD_MAX_LAG = 60
    gen = catalog.cached().generator("users")
    declaration = gen.declarations[0]
    now = dt.datetime.now(dt.UTC)
    record = outputs.Record(
        built_at=(now - dt.timedelta(hours=5)).isoformat(),
        error="ChartError: boom",
        failed_at=(now - dt.timedelta(seconds=5)).isoformat(),
        failing_since=(now - dt.timedelta(seconds=90)).isoformat(),
    )
    found = freshness.of(gen, declaration, record, freshness.Pending({}, now))
    assert found.status == "error" and 89 < found.lag < 91
    assert found.failed_at == record.failed_at
    never = freshness.of(gen, declaration, outputs.Record(), freshness.Pending({}, now))
    assert (never.status, never.lag) == ("error", None)


def test_a_chart_limit_comes_before_its_generators_and_the_setting(settings):
    settings.CHARTBUILD_MAX_LAG = dt.timedelta(minutes=10)

    @chart(models=["auth.user"], max_lag=(30, 60))
    def own() -> None: ...

    @chart(models=["auth.user"])
    def inherits() -> None: ...

    mine, theirs = getattr(own, ATTRIBUTE), getattr(inherits, ATTRIBUTE)
    plain = catalog.Generator("g", "g", None, (mine, theirs))
    strict = catalog.Generator("g", "g", None, (mine, theirs), max_lag=(5.0, 10.0))
    assert freshness.limit_of(plain, mine) == (30.0, 60.0)
    assert freshness.limit_of(plain, theirs) == (300.0, 600.0)  # half of it warns
    assert freshness.limit_of(strict, theirs) == (5.0, 10.0)
    settings.CHARTBUILD_MAX_LAG = None
    assert freshness.limit_of(plain, theirs) is None
    with pytest.raises(ValueError, match=r"max_lag must be a number of seconds above 0"):
        chart(models=["auth.user"], max_lag="soon")(lambda: None)
    with pytest.raises(ValueError, match="warn limit 9 s is above its error limit"):
        chart(models=["auth.user"], max_lag=(9, 3))(lambda: None)


def test_the_metrics_answer_only_to_those_allowed(served_build, settings):
    url = "/charts/metrics/"
    assert Client().get(url).status_code == 401
    User.objects.create_user("reader", password="pw")
    reader = Client()
    reader.login(username="reader", password="pw")
    assert reader.get(url).status_code == 403
    User.objects.create_user("boss", password="pw", is_staff=True)
    staff = Client()
    staff.login(username="boss", password="pw")
    response = staff.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    lags = {s.labels["task"]: s.value for s in families["chartbuild_lag_seconds"].samples}
    assert lags["shop.revenue_per_month"] == 0
    assert lags["users.total_users"] > 0  # the users made here wait for a build
    durations = families["chartbuild_build_duration_seconds"].samples
    assert all(s.value > 0 for s in durations) and len(durations) == len(lags)
    assert {s.labels["status"] for s in families["chartbuild_freshness"].samples} == {
        "pass",
        "warn",
        "error",
    }
    waiting = families["chartbuild_pending_changes"].samples[0].value
    assert waiting >= 1
    # a scraper signs in with HTTP Basic authentication
    scraper = base64.b64encode(b"boss:pw").decode()
    assert Client().get(url, HTTP_AUTHORIZATION=f"Basic {scraper}").status_code == 200
    wrong = base64.b64encode(b"boss:nope").decode()
    assert Client().get(url, HTTP_AUTHORIZATION=f"Basic {wrong}").status_code == 401
    # one more change waits: the queue shows it
    User.objects.create(username="waiting")
    families = {f.name: f for f in text_string_to_metric_families(staff.get(url).content.decode())}
    assert families["chartbuild_pending_changes"].samples[0].value > waiting
    settings.CHARTBUILD_METRICS_PERMISSION = "signed_in"
    assert reader.get(url).status_code == 200
