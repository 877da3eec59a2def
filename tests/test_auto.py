"""`doit auto`, for real: a watcher process, changes from this process, files on disk."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import mqueue.hooks
import pytest
from django.contrib.auth.models import User
from django.db import connection

from chartbuild.live import wakeup
from demo.shop.models import Product
from tests.doit import Auto, Build, building, database_url, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


POLL = 1.0  # seconds, for the polling test
NEVER = 120.0  # a poll interval that cannot explain what a test sees


@pytest.fixture
def auto(request, settings, tmp_path):
    """A running `doit auto`; its poll interval is the test's `poll` mark (default NEVER)."""
    mark = request.node.get_closest_marker("poll")
    Product.objects.create(name="Dune", category="books", price="9.50")
    User.objects.create(username="first")
    build = Build(tmp_path)
    build.copy_demo_generators()
    build.env["CHARTBUILD_POLL_INTERVAL"] = str(mark.args[0] if mark else NEVER)
    if request.node.get_closest_marker("serial"):
        build.env["CHARTBUILD_PARALLEL"] = "1"
    settings.CHARTBUILD_STATE_DIR = build.state  # where this process's hook signals
    watcher = Auto(build)
    watcher.wait_for("start:")
    yield watcher
    if watcher.process.poll() is None:
        watcher.stop()


def users(build: Build) -> int:
    return json.loads((build.out / "users" / "total_users.json").read_text())["value"]


def shop_mtimes(build: Build) -> dict:
    return {p: p.stat().st_mtime_ns for p in (build.out / "shop").iterdir()}


def test_a_new_user_reaches_the_users_outputs_within_two_seconds(auto):
    shop = shop_mtimes(auto.build)
    User.objects.create(username="second")
    wait_until(lambda: users(auto.build) == 2, timeout=2)
    line = auto.wait_for("rebuilt", timeout=5)
    # the hook's datagram, or NOTIFY; on SQLite the database file may be first
    woken = {"signal", "notify"} if connection.vendor == "postgresql" else {"signal", "database"}
    assert any(reason in line for reason in woken), line
    assert "users.total_users" in line and "shop." not in line
    assert shop_mtimes(auto.build) == shop


def insert_user_elsewhere(username: str) -> None:
    """A raw INSERT into the SQLite test database by another program."""
    if connection.vendor != "sqlite":
        pytest.skip("an SQLite database file")
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "with sqlite3.connect(sys.argv[1]) as db:\n"
            '    db.execute("INSERT INTO auth_user (username, password, is_superuser,'
            " first_name, last_name, email, is_staff, is_active, date_joined) VALUES"
            " (?, '', 0, '', '', '', 0, 1, CURRENT_TIMESTAMP)\", [sys.argv[2]])\n",
            connection.settings_dict["NAME"],
            username,
        ],
        capture_output=True,
        text=True,
    )
    assert other.returncode == 0, other.stderr


def test_on_sqlite_a_write_by_another_program_wakes_it_at_once(auto):
    shop = shop_mtimes(auto.build)
    insert_user_elsewhere("elsewhere")
    wait_until(lambda: users(auto.build) == 2, timeout=5)  # no hook, no poll: the file
    line = auto.wait_for("rebuilt", timeout=5)
    assert "database written" in line and "users.total_users" in line, line
    assert shop_mtimes(auto.build) == shop
    with pytest.raises(AssertionError):  # and its own writes start no build of their own
        auto.wait_for("rebuilt", timeout=1.5)


def test_on_sqlite_a_write_by_another_program_during_a_build_is_built_next(tmp_path):
    insert_user_elsewhere("first")
    build = Build(tmp_path, generators=["tests.generators.sleepy"])
    build.env["CHARTBUILD_POLL_INTERVAL"] = str(NEVER)
    hold = tmp_path / "hold"
    build.env["CHARTBUILD_TEST_HOLD"] = str(hold)

    def counted() -> int:
        return json.loads((build.out / "sleepy" / "sleepy.json").read_text())["value"]

    watcher = Auto(build)
    try:
        watcher.wait_for("start:")
        assert counted() == 1
        hold.touch()
        insert_user_elsewhere("second")  # wakes it: a build, held in the middle
        wait_until(lambda: building(build), timeout=5)
        time.sleep(0.5)  # its export has read already
        insert_user_elsewhere("third")
        hold.unlink()
        wait_until(lambda: counted() == 3, timeout=5)  # the next build, at once
    finally:
        hold.unlink(missing_ok=True)
        watcher.stop()


@pytest.mark.poll(POLL)
def test_without_the_hook_polling_finds_the_change(auto, monkeypatch):
    monkeypatch.setattr(mqueue.hooks, "HOOKS", {})
    shop = shop_mtimes(auto.build)
    User.objects.create(username="unsignalled")
    wait_until(lambda: users(auto.build) == 2, timeout=POLL + 2)
    line = auto.wait_for("rebuilt", timeout=5)
    # the capture's NOTIFY (PostgreSQL) or the database file (SQLite) may wake it before
    # the poll does: either way the hook's signal was not needed, and nothing was taken away
    woken_by = (
        {"poll", "notify"} if connection.vendor == "postgresql" else {"poll", "database written"}
    )
    reasons = set(line.split("] ", 1)[1].split(":", 1)[0].split(", "))
    assert reasons and reasons <= woken_by, line
    assert "shop." not in line
    assert shop_mtimes(auto.build) == shop


def test_editing_a_generator_rebuilds_it_and_a_new_chart_appears(auto):
    source = auto.build.gens / "users.py"
    source.write_text(
        source.read_text() + "\n\n@chart(models=[User], title='Staff or not')\n"
        "def staff_share():\n"
        "    rows = list(User.objects.values('is_staff').annotate(n=Count('id')).order_by())\n"
        "    return {'data': {'values': rows}, 'mark': 'bar',\n"
        "            'encoding': {'x': {'field': 'is_staff', 'type': 'nominal'},\n"
        "                         'y': {'field': 'n', 'type': 'quantitative'}}}\n"
    )
    line = auto.wait_for("users.staff_share", timeout=10)
    assert "users.py changed" in line
    assert (auto.build.out / "users" / "staff_share.svg").read_text().startswith("<svg")
    assert "users.staff_share" in (auto.build.out / "manifest.json").read_text()
    assert 'id="chart-staff_share"' in (auto.build.out / "users" / "index.html").read_text()


def test_sigterm_stops_it_at_once_and_leaves_nothing_half_done(auto):
    for i in range(30):
        User.objects.create(username=f"burst{i}")
    wait_until(lambda: building(auto.build), timeout=5)  # stop it in the middle of a build
    assert auto.stop() < 1
    leftovers = [p for p in auto.build.out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    auto.build.env["CHARTBUILD_LOCK_TIMEOUT"] = "0"  # the lock must be free now
    after = auto.build.run()
    assert after.returncode == 0
    assert users(auto.build) == 31


def test_a_burst_of_saves_gives_one_or_two_builds(auto):
    started = time.monotonic()
    while time.monotonic() - started < 1:
        User.objects.create(username=f"b{time.monotonic_ns()}")
    total = User.objects.count()
    wait_until(lambda: users(auto.build) == total, timeout=5)
    time.sleep(1.5)
    while not auto.lines.empty():
        auto.seen.append(auto.lines.get())
    builds = [line for line in auto.seen if "rebuilt" in line and "start:" not in line]
    assert 1 <= len(builds) <= 2, builds


def orders(build: Build) -> int:
    return json.loads((build.out / "shop" / "orders_count.json").read_text())["value"]


def insert_order_elsewhere() -> None:
    """A write by another program: no Django, no hook, only the database's triggers."""
    import psycopg

    with psycopg.connect(database_url(), autocommit=True) as other:
        other.execute(
            "INSERT INTO shop_order (product_id, status, quantity, amount, created_at)"
            " SELECT id, 'paid', 1, 9.50, now() FROM shop_product LIMIT 1"
        )


def test_a_raw_insert_from_another_connection_is_built_within_a_second(postgres, auto):
    """Done-when 3: only NOTIFY can explain it (the poll interval is 120 s)."""
    assert orders(auto.build) == 0
    insert_order_elsewhere()
    wait_until(lambda: orders(auto.build) == 1, timeout=1)
    assert "notify" in auto.wait_for("rebuilt", timeout=5)


def test_it_listens_again_after_its_connections_are_terminated(postgres, auto):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    auto.wait_for("lost the LISTEN connection", timeout=10)
    auto.wait_for("listening on database 'default' again", timeout=10)
    insert_order_elsewhere()
    wait_until(lambda: orders(auto.build) == 1, timeout=5)
    assert auto.process.poll() is None


def replace_the_sqlite_file() -> None:
    """Put a copy of the test database with one more user where the database was."""
    if connection.vendor != "sqlite":
        pytest.skip("an SQLite database file")
    name = connection.settings_dict["NAME"]
    connection.close()
    replacement = f"{name}.replacement"
    shutil.copyfile(name, replacement)
    with sqlite3.connect(replacement) as other:  # a restored backup, say, with one more user
        other.execute(
            "INSERT INTO auth_user (username, password, is_superuser, first_name, last_name,"
            " email, is_staff, is_active, date_joined) VALUES"
            " ('restored', '', 0, '', '', '', 0, 1, CURRENT_TIMESTAMP)"
        )
    os.replace(replacement, name)


@pytest.mark.serial
def test_a_serial_build_notices_a_replaced_sqlite_file_and_rebuilds_everything(auto):
    replace_the_sqlite_file()
    wakeup.send(auto.build.state)
    auto.wait_for("was replaced", timeout=10)
    line = auto.wait_for("rebuilt", timeout=20)
    assert "shop.orders_count" in line  # everything ran again, not only the user charts
    assert users(auto.build) == 2


def test_a_parallel_build_reads_a_replaced_sqlite_file(auto):
    """Its tasks run in threads of their own, with connections opened for each build."""
    replace_the_sqlite_file()
    wakeup.send(auto.build.state)
    wait_until(lambda: users(auto.build) == 2, timeout=10)


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_sigterm_stops_it_within_a_second_even_inside_a_long_query(tmp_path, parallel):
    User.objects.create(username="first")
    build = Build(tmp_path, generators=["tests.generators.slow_query"])
    build.env["CHARTBUILD_POLL_INTERVAL"] = str(NEVER)
    build.env["CHARTBUILD_PARALLEL"] = parallel
    watcher = Auto(build)
    try:
        wait_until(lambda: building(build), timeout=30)
        time.sleep(1)  # well inside the query now
        assert watcher.stop() < 1
    finally:
        if watcher.process.poll() is None:
            watcher.process.kill()


def test_its_warm_up_imports_the_generators_and_leaves_a_broken_one_to_its_task(
    tmp_path, settings, monkeypatch
):
    import sys

    from chartbuild.declare import catalog
    from chartbuild.live import auto

    (tmp_path / "warm_ok.py").write_text("import altair\n")
    (tmp_path / "warm_broken.py").write_text("raise SystemExit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.CHARTBUILD_STATE_DIR = str(tmp_path / "state")
    settings.CHARTBUILD_GENERATORS = ["warm_ok", "warm_broken"]
    catalog.load()  # reads the declarations, and caches them: the next load imports nothing
    monkeypatch.delitem(sys.modules, "warm_ok")
    auto.warm_up()
    assert "warm_ok" in sys.modules and "warm_broken" not in sys.modules


def test_after_a_build_it_freezes_what_it_keeps_and_a_reload_thaws_it(tmp_path, settings):
    """Full collections skip the objects a watcher keeps for good (Django, Altair, the
    generators); a reload of the generators thaws them so the old ones can be collected."""
    build = Build(tmp_path, generators=["gens.heap"])
    build.gens.mkdir()
    source = build.gens / "heap.py"
    source.write_text(
        "import gc\n\nfrom chartbuild import number\n\n\n"
        "@number(models=['auth.User'])\ndef frozen():\n    return gc.get_freeze_count()\n"
    )
    settings.CHARTBUILD_STATE_DIR = build.state  # where this process's hook signals

    def frozen() -> int:
        return json.loads((build.out / "heap" / "frozen.json").read_text())["value"]

    watcher = Auto(build)
    try:
        watcher.wait_for("start:")
        assert frozen() == 0  # its first build ran before anything was settled
        User.objects.create(username="second")
        watcher.wait_for("heap.frozen", timeout=10)
        assert frozen() > 10_000
        time.sleep(0.5)  # a late wake-up for the same save (NOTIFY, the signal) is over
        source.write_text(source.read_text() + "\n# edited\n")
        assert "heap.py changed" in watcher.wait_for("heap.frozen", timeout=10)
        assert frozen() == 0
        User.objects.create(username="third")
        watcher.wait_for("heap.frozen", timeout=10)
        assert frozen() > 10_000
    finally:
        watcher.stop()


@pytest.mark.parametrize(("parallel", "practised_here"), [("1", 1), ("2", 0)])
def test_it_practises_where_its_builds_render(tmp_path, parallel, practised_here):
    """Serial builds render in its main thread, which practises; parallel builds render in
    worker processes, which practise, and its own process starts no engine."""
    build = Build(tmp_path, generators=["gens.where"])
    build.env["CHARTBUILD_PARALLEL"] = parallel
    build.gens.mkdir()
    (build.gens / "where.py").write_text(
        "from chartbuild import number\nfrom chartbuild.build import render\n\n\n"
        "@number(models=['auth.User'])\ndef practised():\n    return int(render._practised)\n"
    )
    watcher = Auto(build)
    try:
        watcher.wait_for("start:")
        value = json.loads((build.out / "where" / "practised.json").read_text())["value"]
        assert value == practised_here
    finally:
        watcher.stop()
