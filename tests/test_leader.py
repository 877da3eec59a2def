"""One leading builder among several machines, elected by a PostgreSQL advisory lock."""

import json
import os
import signal
import sys
import threading
import time

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import override_settings

from chartbuild.build import dblock
from chartbuild.live import leader
from demo.shop.models import Product
from tests.doit import REPO, Auto, Build, building, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def users(build: Build) -> int | None:
    try:
        return json.loads((build.out / "users" / "total_users.json").read_text())["value"]
    except FileNotFoundError:
        return None


def host(tmp_path, name: str) -> Build:
    """A builder's own working folder (state and outputs), as on a machine of its own."""
    build = Build(tmp_path / name)
    build.copy_demo_generators()
    build.env["CHARTBUILD_POLL_INTERVAL"] = "120"  # only NOTIFY explains a quick rebuild
    return build


def test_one_builder_leads_and_another_takes_over_when_it_is_killed(postgres, tmp_path):
    """Done-when 1: two hosts, one leader; SIGKILL; the other leads within 5 s."""
    Product.objects.create(name="Dune", category="books", price="9.50")
    User.objects.create(username="first")
    one = Auto(host(tmp_path, "one"))
    one.wait_for("leading: this builder builds")
    one.wait_for("start:")
    two = Auto(host(tmp_path, "two"))
    try:
        assert "standby: builder pid" in two.wait_for("standby:")
        User.objects.create(username="second")
        wait_until(lambda: users(one.build) == 2, timeout=10)
        time.sleep(1)
        assert users(two.build) is None  # the standby built nothing, not even once
        assert not [line for line in two.seen if "rebuilt" in line or "start:" in line]

        one.process.send_signal(signal.SIGKILL)
        one.process.wait(10)
        killed = time.monotonic()
        User.objects.create(username="meanwhile")
        two.wait_for("leading: this builder builds", timeout=5)
        assert time.monotonic() - killed < 5
        wait_until(lambda: users(two.build) == 3, timeout=60)  # its first build
        User.objects.create(username="later")
        wait_until(lambda: users(two.build) == 4, timeout=10)
    finally:
        for auto in (one, two):
            if auto.process.poll() is None:
                auto.stop()


def test_a_leader_whose_session_ended_takes_the_lead_again(postgres):
    lead = leader.Leadership("default", retry=0.1, say=lambda text: None)
    assert lead.wait()
    assert lead.leader().startswith("builder pid")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [lead.name()],
        )
    assert not lead.holds()
    lead.confirm()  # nobody else leads: it takes the lead again
    assert lead.holds()
    other = leader.Leadership("default", retry=0.1, say=lambda text: None)
    assert not other.lead()
    lead.release()
    assert dblock.current(connection, lead.key) is None  # free at once, not once it has closed
    assert other.lead()
    with pytest.raises(leader.LeadershipLost, match="lost the lead: builder pid"):
        lead.confirm()
    other.release()


def test_the_lock_key_is_the_databases_as_the_server_names_it_and_the_projects(postgres):
    first = dblock.key(connection)
    other = connections.create_connection("default")
    try:
        assert dblock.key(other) == first  # another connection, as another machine's
    finally:
        other.close()
    with override_settings(CHARTBUILD_LEADER_KEY="another project"):
        assert dblock.key(connection) != first


@pytest.mark.parametrize("lock_key", [-1, -(2**63), 2**63 - 1, 1])
def test_any_key_is_found_in_pg_locks(postgres, lock_key):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [lock_key])
    try:
        session = dblock.current(connection, lock_key)
        assert session is not None and session["pid"]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_key])
    assert dblock.current(connection, lock_key) is None


def test_the_leader_settings_are_checked(settings):
    settings.CHARTBUILD_LEADER = "zookeeper"
    settings.CHARTBUILD_LEADER_RETRY = 0
    ids = {e.id for e in _leader_checks()}
    assert ids == {"chartbuild.E018", "chartbuild.E019"}
    settings.CHARTBUILD_LEADER = "postgres"
    settings.CHARTBUILD_LEADER_RETRY = 2
    expected = set() if connection.vendor == "postgresql" else {"chartbuild.E018"}
    assert {e.id for e in _leader_checks()} == expected


def _leader_checks():
    from chartbuild import checks

    return checks._leader()


def test_gencharts_on_a_schedule_waits_as_a_standby(postgres, tmp_path):
    lead = leader.Leadership("default", retry=0.1, say=lambda text: None)
    assert lead.lead()
    build = host(tmp_path, "scheduled")
    scheduled = Auto(build, [sys.executable, str(REPO / "manage.py"), "gencharts", "-s=0.01"])
    try:
        scheduled.wait_for("standby:")
        time.sleep(1)
        assert not (build.out / "manifest.json").exists()
        lead.release()
        scheduled.wait_for("leading: this builder builds", timeout=10)
        wait_until(lambda: (build.out / "manifest.json").exists(), timeout=60)
    finally:
        lead.release()
        scheduled.stop()


def test_builds_from_every_machine_take_turns(postgres, tmp_path):
    """A one-off build on another machine waits for the build under way (or, with
    CHARTBUILD_LOCK_TIMEOUT = 0, stops at once naming it), then builds."""
    Product.objects.create(name="Dune", category="books", price="9.50")
    held = dblock.DatabaseLock.take(timeout=5)  # this process builds, as another machine would
    assert held is not None
    try:
        other = host(tmp_path, "other")
        other.env["CHARTBUILD_LOCK_TIMEOUT"] = "0"
        refused = other.run()
        assert refused.returncode != 0
        error = refused.task("export")["error"]
        assert f"builder pid {os.getpid()} on " in error and "CHARTBUILD_LOCK_TIMEOUT" in error
        assert not (other.out / "manifest.json").exists()

        other.env["CHARTBUILD_LOCK_TIMEOUT"] = "60"
        waiting = other.start()
        time.sleep(3)
        assert waiting.poll() is None and not (other.out / "manifest.json").exists()
        assert "building now: builder pid" in status_text()
    finally:
        held.release()
    result = other.result(waiting, *waiting.communicate(timeout=300), True)
    assert result.returncode == 0, result.stderr
    assert (other.out / "manifest.json").exists()
    assert "building now: nothing" in status_text()


def status_text() -> str:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("chartbuild", "status", stdout=out)
    return out.getvalue()


def builder_sessions() -> int:
    """The sessions of this test database but the test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


def test_a_builder_holds_its_threads_plus_two_connections_over_many_rebuilds(postgres, tmp_path):
    """Its task threads', its leader's (which holds the build lock too) and its listener's."""
    User.objects.create(username="first")
    build = host(tmp_path, "one")
    build.env["CHARTBUILD_PARALLEL"] = "2"
    others = builder_sessions()  # a session another test's process has not closed yet
    auto = Auto(build)
    try:
        auto.wait_for("start:", timeout=120)
        counts = []
        for i in range(50):
            User.objects.create(username=f"user{i}")
            wait_until(lambda i=i: users(build) == i + 2, timeout=30)
            counts.append(builder_sessions())
        time.sleep(0.5)
        counts.append(builder_sessions())
    finally:
        auto.stop()
    assert max(counts) - others <= 2 + 2, (others, counts)


@pytest.mark.parametrize("ended", ["by the server", "by its lease"])
def test_a_leader_frozen_mid_build_hands_over(postgres, tmp_path, ended):
    """SIGSTOP in the middle of a build (a paused VM): once the leader's session is ended, a
    standby leads and builds within CHARTBUILD_LEADER_RETRY + 1 s; when nothing ends it,
    within CHARTBUILD_LEADER_LEASE + retry + 1 s (the standby ends it). The old leader,
    resumed, publishes nothing."""
    User.objects.create(username="first")
    shared = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "published")},
    }
    hold = tmp_path / "hold"
    retry, lease = 1, 3
    machines = []
    for name in ("one", "two"):
        build = Build(tmp_path / name, generators=["tests.generators.sleepy"])
        build.env["CHARTBUILD_POLL_INTERVAL"] = "120"
        build.env["CHARTBUILD_LEADER_RETRY"] = str(retry)
        build.env["CHARTBUILD_LEADER_LEASE"] = str(lease)
        build.env["CHARTBUILD_TEST_STORAGE"] = json.dumps(shared)
        build.env["CHARTBUILD_TEST_HOLD"] = str(hold)
        machines.append(build)
    published = tmp_path / "published" / "manifest.json"
    one = Auto(machines[0])
    two = None
    try:
        one.wait_for("leading: this builder builds")
        one.wait_for("start:", timeout=120)
        two = Auto(machines[1])
        two.wait_for("standby:", timeout=60)
        hold.touch()
        User.objects.create(username="second")  # one builds, and is held in the middle
        wait_until(lambda: building(machines[0]), timeout=10)
        time.sleep(0.5)
        one.process.send_signal(signal.SIGSTOP)
        frozen = time.monotonic()
        hold.unlink()
        before = published.read_bytes()
        if ended == "by the server":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name LIKE %s",
                    [f"chartbuild leader % {one.process.pid} %"],
                )
                assert cursor.fetchall() == [(True,)]
            allowed = retry + 1
        else:
            allowed = lease + retry + 1
        two.wait_for("leading: this builder builds", timeout=allowed + 5)
        took = time.monotonic() - frozen
        assert took < allowed + 0.5, took  # the test's own steps take a little
        two.wait_for("start:", timeout=30)
        assert published.read_bytes() != before
        taken_over = published.read_bytes()
        one.process.send_signal(signal.SIGCONT)
        one.wait_for("lost", timeout=30)  # its build ends refused
        time.sleep(1)
        assert published.read_bytes() == taken_over  # the old leader published nothing
    finally:
        one.process.send_signal(signal.SIGCONT)
        for auto in (one, two):
            if auto is not None and auto.process.poll() is None:
                auto.stop()


def test_a_live_leader_keeps_the_lead_past_its_lease(postgres):
    lead = leader.Leadership("default", retry=0.1, lease=0.6, say=lambda text: None)
    assert lead.wait()
    other = leader.Leadership("default", retry=0.1, lease=0.6, say=lambda text: None)
    stop = threading.Event()
    threading.Timer(2, stop.set).start()
    assert not other.wait(stop)  # two seconds of tries: the leader renews, and stays
    assert lead.holds()
    lead.release()
    other.release()
