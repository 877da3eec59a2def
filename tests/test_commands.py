import json
import signal
import subprocess
import sys
import time
from io import StringIO

import mqueue.hooks
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from chartbuild.management.commands.gencharts import minutes
from demo.shop.models import Product
from tests.doit import REPO, Build, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def out(settings, tmp_path):
    settings.CHARTBUILD_STATE_DIR = tmp_path / "state"
    settings.CHARTBUILD_OUTPUT_DIR = tmp_path / "charts"
    User.objects.create(username="ada")
    Product.objects.create(name="Dune", category="books", price="9.50")
    return tmp_path / "charts"


def manage(build: Build, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=build.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_gen_builds_only_the_named_generator(out):
    stdout = StringIO()
    call_command("gen", "users", stdout=stdout)
    assert "users.total_users" in stdout.getvalue()
    assert json.loads((out / "users" / "total_users.json").read_text())["value"] == 1
    assert (out / "users" / "index.html").exists()
    assert not (out / "shop").exists()


def test_gen_of_an_unknown_generator_lists_the_known_ones(out):
    with pytest.raises(CommandError, match="unknown generator nope; known generators: users, shop"):
        call_command("gen", "nope")


def test_gen_works_from_a_users_own_mqueue_hook(out, monkeypatch):
    monkeypatch.setattr(mqueue.hooks, "HOOKS", {"mine": {"path": "tests.userhook"}})
    User.objects.create(username="bob")
    assert json.loads((out / "users" / "total_users.json").read_text())["value"] == 2


def test_gencharts_quiet_prints_nothing_and_succeeds(tmp_path):
    User.objects.create(username="ada")
    build = Build(tmp_path)
    done = manage(build, "gencharts", "-q")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (build.out / "users" / "total_users.json").exists()
    assert (build.out / "manifest.json").exists()


def test_gencharts_fails_when_a_chart_fails(tmp_path):
    User.objects.create(username="ada")
    build = Build(tmp_path)
    build.copy_demo_generators()
    build.break_function("shop", "top_products", "raise LookupError('no')")
    done = manage(build, "gencharts", "-q")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "shop.top_products" in done.stderr and "LookupError" in done.stderr


def result_line(process: subprocess.Popen[str]) -> str:
    """The next line of a scheduled ``gencharts`` but those of the leader election."""
    while (line := process.stdout.readline()).startswith("leading"):
        pass
    return line


def test_gencharts_repeats_on_a_schedule_until_stopped(tmp_path):
    build = Build(tmp_path)
    process = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "gencharts", "-s=0.01"],
        env=build.env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = [result_line(process) for _ in range(3)]
    process.terminate()
    assert process.wait(10) == 0
    assert all("rebuilt" in line for line in lines)


def test_gencharts_on_a_schedule_stops_at_once_on_sigterm_mid_build(tmp_path):
    User.objects.create(username="ada")
    build = Build(tmp_path, generators=["tests.generators.slow_query"])
    process = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "gencharts", "-s=1"],
        env=build.env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: (build.state / "build.lock").exists(), timeout=30)
    time.sleep(1)  # inside the minute-long query of its one number
    started = time.monotonic()
    process.terminate()
    process.wait(10)
    # not the minute its query takes (it stops in about 0.2 s: on a loaded 2-core machine
    # the process's exit alone took 1.2 s once)
    assert time.monotonic() - started < 5
    assert process.returncode in (0, 128 + signal.SIGTERM)


@pytest.mark.parametrize(("text", "value"), [("5", 5.0), ("=5", 5.0), ("0.5", 0.5)])
def test_schedule_minutes(text, value):
    assert minutes(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "soon"])
def test_bad_schedule_minutes(text):
    with pytest.raises(ValueError):
        minutes(text)


def test_gencharts_on_a_schedule_reconnects_after_its_connection_is_terminated(postgres, tmp_path):
    from django.db import connection

    User.objects.create(username="ada")
    build = Build(tmp_path)
    process = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "gencharts", "-s=0.01"],
        env=build.env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "rebuilt" in result_line(process)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        User.objects.create(username="bob")
        total = build.out / "users" / "total_users.json"
        deadline = time.monotonic() + 20
        while json.loads(total.read_text())["value"] != 2:
            assert time.monotonic() < deadline, "the change after the termination was not built"
            time.sleep(0.1)
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert process.returncode == 0
    assert "Traceback" not in output
