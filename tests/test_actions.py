import os

import pytest

from chartbuild.build import actions
from chartbuild.build.hashes import ContentChecker
from chartbuild.declare.registry import Declaration
from chartbuild.exceptions import ChartError

NUMBER = Declaration(name="n", kind="number", title="N", models=("auth.user",), label="N")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_number_json_cannot_hold_is_a_chart_error(value):
    with pytest.raises(ChartError, match=r"users\.n returned .*, which JSON cannot hold"):
        actions.number_json("number users.n", NUMBER, value, "now")


@pytest.mark.parametrize("value", ["12", True, [1]])
def test_a_number_of_the_wrong_type_is_a_chart_error(value):
    with pytest.raises(ChartError, match="return an int, float, Decimal or Trend"):
        actions.number_json("number users.n", NUMBER, value, "now")


def test_a_chart_of_the_wrong_type_is_a_chart_error():
    with pytest.raises(ChartError, match="returned list; return an Altair chart or a Vega-Lite"):
        actions.chart_spec("chart users.c", [])


def test_a_spec_json_cannot_hold_is_a_chart_error():
    with pytest.raises(ChartError, match=r"users\.c: its spec cannot be written as JSON"):
        actions.chart_spec("chart users.c", {"data": {"values": [{"x": object()}]}})


def test_stamps_are_compared_by_content_even_within_one_mtime_tick(tmp_path):
    stamp = tmp_path / "auth.user.stamp"
    stamp.write_text("auth.user 5\n")
    checker = ContentChecker()
    state = checker.get_state(str(stamp), None)
    mtime = stamp.stat().st_mtime_ns
    stamp.write_text("auth.user 6\n")  # same size
    os.utime(stamp, ns=(mtime, mtime))  # and, as on a coarse filesystem, the same mtime
    assert checker.check_modified(str(stamp), stamp.stat(), state) is True
    seen = checker.get_state(str(stamp), state)
    assert checker.check_modified(str(stamp), stamp.stat(), seen) is False


def test_a_user_interrupt_is_not_taken_for_a_chart_failure(monkeypatch):
    from chartbuild.build import interrupts

    monkeypatch.setattr(interrupts, "requested", lambda: True)

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        actions.call("number users.n", interrupted)


@pytest.mark.django_db(transaction=True)
def test_any_base_exception_of_a_function_fails_only_its_task(tmp_path):
    from tests.doit import Build, seed

    seed()
    build = Build(tmp_path, generators=["tests.generators.exits"])
    result = build.run()
    assert result.returncode in (1, 2)
    errors = {t["name"]: t["error"] or "" for t in result.tasks if t["result"] == "fail"}
    assert "called sys.exit(3)" in errors["exits.exits"]
    assert "raised KeyboardInterrupt" in errors["exits.interrupts"]
    assert "Unusual: not an Exception" in errors["exits.unusual"]
    assert result.task("exits.fine")["result"] == "success"
    assert result.task("exits.also_fine")["result"] == "success"
    # the dashboard and the manifest are written all the same, with what did build
    assert "Fine" in (build.out / "exits" / "index.html").read_text()
    entries = {e["task"]: e for e in build.manifest()}
    assert entries["exits.fine"]["built_at"]
    assert "called sys.exit(3)" in entries["exits.exits"]["error"]


@pytest.mark.django_db(transaction=True)
def test_a_generator_that_exits_at_import_fails_its_task_with_a_message(tmp_path):
    from tests.doit import Build, seed

    seed()
    build = Build(tmp_path, generators=["tests.generators.exits_at_import"])
    result = build.run()
    assert result.returncode in (1, 2)
    error = result.task("gen:exits_at_import")["error"]
    assert "cannot be imported" in error and "a generator that leaves at import" in error


def test_the_teardown_writes_only_once_every_worker_thread_is_done(monkeypatch):
    """doit's worker threads run the teardown as soon as they have nothing left to start."""
    import threading

    from doit.runner import MThreadRunner

    from chartbuild.build.session import Session

    written = []
    monkeypatch.setattr(actions.manifest_file, "write", lambda cat, touched: written.append(1))
    monkeypatch.setattr(actions.manifest_file, "clear_due", lambda: None)
    monkeypatch.setattr(actions.catalog, "load", lambda: None)
    build = Session(one_off=False)
    build.touch("users")
    build.note_pages("users")
    worker = MThreadRunner.DaemonThread(target=actions.finish, args=[build])
    worker.start()
    worker.join()
    assert written == []
    assert threading.current_thread() is not worker
    actions.finish(build)  # doit's last call, once every thread has ended
    assert written == [1]


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_mid_chart_is_one_line_with_its_cause_and_the_rest_builds(
    postgres, tmp_path
):
    from django.contrib.auth.models import User
    from django.db import connection

    from tests.doit import Build, building, wait_until

    User.objects.create(username="first")
    build = Build(tmp_path, generators=["tests.generators.slow_query", "tests.generators.good"])
    build.env["CHARTBUILD_PARALLEL"] = "1"
    process = build.start(json_report=False)
    try:
        wait_until(lambda: building(build), timeout=30)

        def terminated() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND query LIKE 'SELECT pg_sleep%%'"
                )
                return bool(cursor.fetchall())

        wait_until(terminated, timeout=30)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert "Traceback" not in stdout + stderr
    (failed,) = [line for line in stdout.splitlines() if "FAILED" in line]
    assert failed.endswith(
        "slow_query.slow FAILED: number slow_query.slow lost its database connection:"
        " terminating connection due to administrator command"
    )
    assert not any(line.startswith("    ") for line in stdout.splitlines())  # no detail
    assert "built 2, up to date 0, failed 1 (slow_query.slow)" in stdout.splitlines()[-1]


def test_the_schema_is_checked_only_when_the_code_may_have_changed_the_shape():
    import altair as alt

    bad = alt.Chart(alt.Data(values=[{"a": 1}])).mark_bar().encode(x="a:Q")
    bad.mark = "not-a-mark"  # Vega-Lite's schema has no such mark
    with pytest.raises(ChartError, match="returned a chart that Altair cannot convert"):
        actions.chart_spec("chart users.c", bad)
    assert actions.chart_spec("chart users.c", bad, validate=False)["mark"]["type"] == "not-a-mark"
    data_only = [{"kind": "changed", "model": "auth.user", "exports": []}]
    assert actions._code_may_differ(data_only) is False
    for kind in ("never built", "code", "failed before", "forced", "reset"):
        assert actions._code_may_differ([*data_only, {"kind": kind}]) is True
