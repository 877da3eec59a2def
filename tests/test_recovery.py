"""A builder heals itself: lost or corrupt state, and what a killed build leaves behind."""

import json
import signal
import time

import pytest
from django.contrib.auth.models import User

from tests.doit import Build

pytestmark = pytest.mark.django_db(transaction=True)


def everything(build: Build) -> set[str]:
    return {e["task"] for e in build.manifest()}


def total_users(build: Build) -> int:
    return json.loads((build.out / "users" / "total_users.json").read_text())["value"]


def test_lost_stamps_and_cursor_rebuild_everything(build):
    """doit.sqlite3 is kept: new stamps must not repeat a content it recorded."""
    for path in (build.state / "stamps").iterdir():
        path.unlink()
    (build.state / "cursor.json").unlink()
    User.objects.create(username="pending")
    result = build.run()
    assert result.returncode == 0
    assert result.charts == everything(build)
    assert total_users(build) == 4
    assert build.run().charts == set()


def test_a_corrupt_doit_database_is_one_warning_and_a_full_rebuild(build):
    (build.state / "doit.sqlite3").write_bytes(b"this is not a database" * 100)
    result = build.run()
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("is unreadable") == 1
    assert "doit.sqlite3.unreadable" in result.stderr
    assert result.charts == everything(build)
    again = build.run()
    assert again.charts == set()
    assert "unreadable" not in again.stderr


def test_a_corrupt_cursor_is_one_warning_and_a_full_rebuild(build):
    (build.state / "cursor.json").write_text("{ half a cursor")
    result = build.run()
    assert result.returncode == 0
    assert result.stderr.count("is unreadable") == 1
    assert result.charts == everything(build)


def test_a_corrupt_generator_cache_is_one_warning(build):
    (build.state / "catalog.json").write_text("[1, 2")
    result = build.run()
    assert result.returncode == 0
    assert result.stderr.count("generator cache") == 1
    assert build.run().stderr.count("generator cache") == 0


def test_the_build_after_a_killed_one_removes_its_temporary_files(build):
    build.break_function("users", "total_users", "import time; time.sleep(60)")
    User.objects.create(username="slow")
    process = build.start()
    deadline = time.monotonic() + 60
    while "pid" not in (build.state / "build.lock").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1)  # inside the sleeping chart now
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    # What a write cut short by the kill leaves: a temporary file beside its target.
    leftovers = [
        build.out / "users" / ".total_users.json.k1ll3d00.tmp",
        build.state / "stamps" / ".auth.user.stamp.k1ll3d00.tmp",
    ]
    for path in leftovers:
        path.write_text("half")
    build.gens.joinpath("users.py").write_text(
        build.gens.joinpath("users.py").read_text().replace("import time; time.sleep(60)", "")
    )
    result = build.run()
    assert result.returncode == 0, result.stderr
    assert not any(path.exists() for path in leftovers)
    assert total_users(build) == 4
    assert (build.state / "build.lock").read_text() == ""  # let go normally this time


def test_a_busy_doit_database_is_not_taken_for_a_corrupt_one(build):
    import sqlite3

    holder = sqlite3.connect(build.state / "doit.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = build.run()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode != 0
    assert "locked" in result.stdout + result.stderr
    assert not (build.state / "doit.sqlite3.unreadable").exists()
    assert build.run().returncode == 0


def test_state_that_cannot_be_saved_is_one_line_and_exit_3(tmp_path, monkeypatch, capsys):
    """Said as doit says a user error: one line, no traceback, no SystemExit from the library."""
    import sqlite3

    from doit.cmd_base import ModuleTaskLoader
    from doit.dependency import SqliteDB
    from doit.doit_cmd import DoitMain

    def full(self):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(SqliteDB, "dump", full)
    config = {"backend": "chartbuild", "dep_file": str(tmp_path / "doit.sqlite3")}
    tasks = {"DOIT_CONFIG": config, "task_one": lambda: {"actions": [lambda: None]}}
    code = DoitMain(ModuleTaskLoader(tasks)).run(["run"])
    said = capsys.readouterr().err
    assert code == 3
    assert "ERROR: chartbuild: cannot save doit's state in" in said
    assert "database or disk is full" in said and "Traceback" not in said
