"""The task graph, end to end: real doit runs of dodo.py against the test database."""

import json
import math
import os
import re
import subprocess
import sys
import time

import pytest
from django.contrib.auth.models import User

from chartbuild.build import lock
from chartbuild.publish import outputs
from demo.shop.models import Order
from tests.doit import REPO, USERS, Build, building, seed, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def readers(build: Build, model: str) -> set[str]:
    return {e["task"] for e in build.manifest() if model in e["models"]}


def snapshot(directory):
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_a_build_writes_every_output(build):
    entries = build.manifest()
    charts = [e for e in entries if e["kind"] == "chart"]
    numbers = [e for e in entries if e["kind"] == "number"]
    assert len(charts) >= 6 and len(numbers) >= 3
    for entry in entries:
        assert entry["task"] == f"{entry['generator']}.{entry['name']}"
        assert entry["built_at"]
        for path in entry["outputs"]:
            assert (build.out / path).stat().st_size > 0
    for entry in charts:
        base = build.out / entry["generator"] / entry["name"]
        assert json.loads(base.with_suffix(".vl.json").read_text())["$schema"]
        assert base.with_suffix(".svg").read_text().startswith("<svg")
        assert "../static/vega.js" in base.with_suffix(".html").read_text()
    for entry in numbers:
        data = json.loads((build.out / entry["outputs"][0]).read_text())
        plain = {"value", "label", "unit", "built_at"}
        trend = {"previous", "delta", "pct", "period", "partial", "higher_is_better", "series"}
        assert set(data) == (plain | trend if entry["name"] == "revenue_this_month" else plain)
    for generator in ("users", "shop"):
        page = (build.out / generator / "index.html").read_text()
        assert not re.findall(r'(?:src|href)="(?:https?:)?//', page)  # nothing from a CDN
        assert 'src="../static/vega.js"' in page
    assert (build.out / "static" / "vega.js").stat().st_size > 100_000


def test_a_second_build_executes_nothing(build):
    again = build.run()
    assert again.returncode == 0
    assert again.charts == set()
    assert not {"gen:users", "gen:shop", "assets"} & again.executed


def test_a_user_save_rebuilds_exactly_the_charts_that_read_users(build):
    user = User.objects.get(username="user0")
    user.first_name = "Ada"
    user.save()
    result = build.run()
    assert result.returncode == 0
    assert result.charts == readers(build, "auth.user") == USERS


def test_an_order_save_rebuilds_only_its_readers_in_gen_shop(build):
    order = Order.objects.first()
    order.status = "shipped"
    order.save()
    result = build.run("gen:shop")
    assert result.returncode == 0
    assert result.charts == {t for t in readers(build, "shop.order") if t.startswith("shop.")}
    assert result.charts
    # the other generator is neither built nor needed
    assert not any(t.startswith("users.") for t in result.charts)
    assert build.run().charts == set()


def test_editing_a_generator_rebuilds_its_charts_only(build):
    source = build.gens / "users.py"
    source.write_text(source.read_text() + "\n# edited\n")
    result = build.run()
    assert result.returncode == 0
    assert result.charts == USERS


def test_a_failing_chart_keeps_its_outputs_and_the_others_build(build):
    before = {p: p.read_bytes() for p in (build.out / "users").glob("signup_hours.*")}
    assert len(before) == 5  # .vl.json, .svg, .png, .csv, .html
    build.break_function("users", "signup_hours", "1 / 0")
    User.objects.create(username="late")
    result = build.run()
    assert result.returncode != 0
    assert result.task("users.signup_hours")["result"] == "fail"
    error = result.task("users.signup_hours")["error"]
    assert "users.signup_hours" in error and "ZeroDivisionError" in error
    assert result.charts >= USERS - {"users.signup_hours"}
    assert {p: p.read_bytes() for p in before} == before
    total = json.loads((build.out / "users" / "total_users.json").read_text())
    assert total["value"] == 4
    # the dashboard still takes the charts and numbers that did build
    assert (
        '<span class="figure" title="4 users">4</span> <span class="unit">users'
        in (build.out / "users" / "index.html").read_text()
    )


def test_configuration_errors_fail_their_own_tasks_and_nothing_else(tmp_path):
    seed()
    generators = ["good", "duplicate", "unknown_model", "broken", "good"]
    build = Build(tmp_path, generators=[f"tests.generators.{g}" for g in generators])
    result = build.run()
    assert result.returncode in (1, 2)  # tasks failed; 3 would mean doit could not load them
    assert result.task("export")["result"] == "success"
    assert "chartbuild.E003" in result.task("duplicate.same")["error"]
    assert "chartbuild.E004" in result.task("unknown_model.baskets")["error"]
    assert "this generator is broken on purpose" in result.task("gen:broken")["error"]
    assert "chartbuild.E005" in result.task("good.user_count")["error"]


def test_a_chart_named_index_fails_alone(tmp_path):
    seed()
    build = Build(tmp_path, generators=["tests.generators.reserved", "tests.generators.good"])
    result = build.run()
    assert result.returncode in (1, 2)
    assert "chartbuild.E014" in result.task("reserved.index")["error"]
    assert "chartbuild.E014" in result.task("reserved.Users")["error"]
    assert {"reserved.users", "reserved.fine", "good.users_chart", "good.user_count"} <= {
        t["name"] for t in result.tasks if t["result"] == "success"
    }
    assert (build.out / "good" / "index.html").is_file()
    assert "Fine" in (build.out / "reserved" / "index.html").read_text()
    assert not (build.out / "reserved" / "index.json").exists()


def test_doit_list_shows_every_chart_with_its_title(build):
    result = build.run("list", json_report=False)
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for entry in build.manifest():
        assert entry["task"] in lines
        assert entry["title"] in lines[entry["task"]]


def test_doit_clean_removes_the_outputs(build):
    result = build.run("clean", json_report=False)
    assert result.returncode == 0
    left = [p for p in build.out.rglob("*") if p.is_file()]
    assert left == []
    rebuilt = build.run()
    assert rebuilt.charts == {e["task"] for e in build.manifest()}


def test_two_builds_at_once_lose_nothing(build):
    User.objects.create(username="racer")
    first, second = build.start(), build.start()
    results = [build.result(p, *p.communicate(timeout=300), True) for p in (first, second)]
    assert [r.returncode for r in results] == [0, 0]
    assert set().union(*(r.charts for r in results)) >= USERS
    assert build.run().executed & (USERS | {"gen:users"}) == set()
    total = json.loads((build.out / "users" / "total_users.json").read_text())
    assert total["value"] == 4


def test_a_build_waits_for_the_running_one(build):
    User.objects.create(username="waiting")
    held = lock.acquire(build.state / "build.lock", timeout=5)
    try:
        process = build.start()
        time.sleep(3)
        assert process.poll() is None
        total = json.loads((build.out / "users" / "total_users.json").read_text())
        assert total["value"] == 3
    finally:
        lock.release(held)
    result = build.result(process, *process.communicate(timeout=300), True)
    assert result.returncode == 0
    assert "users.total_users" in result.charts


def test_with_no_wait_a_second_build_stops_with_a_clear_message(build):
    held = lock.acquire(build.state / "build.lock", timeout=5)
    build.env["CHARTBUILD_LOCK_TIMEOUT"] = "0"
    try:
        result = build.run()
    finally:
        lock.release(held)
    assert result.returncode != 0
    assert f"pid {os.getpid()}" in result.task("export")["error"]
    assert "build.lock" in result.task("export")["error"]


def test_an_unmigrated_database_fails_the_export_with_a_hint(tmp_path):
    b = Build(tmp_path)
    b.env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    result = b.run(process=True)  # another database than this process's
    assert result.returncode != 0
    error = result.task("export")["error"]
    assert "cannot read changes from database 'default'" in error
    assert "manage.py migrate" in error
    assert result.charts == set()


def test_a_no_op_build_imports_neither_altair_nor_vl_convert(build):
    program = (
        "import json, sys\n"
        "from doit.doit_cmd import DoitMain\n"
        f"code = DoitMain().run(['-f', {str(REPO / 'dodo.py')!r}])\n"
        "print(json.dumps([code, 'altair' in sys.modules, 'vl_convert' in sys.modules]),"
        " file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], env=build.env, cwd=REPO, capture_output=True, text=True
    )
    assert json.loads(done.stderr.strip().splitlines()[-1]) == [0, False, False]


def test_process_workers_are_refused_with_a_clear_message(build):
    User.objects.create(username="late")
    result = build.run("-P", "process", "-n", "2")
    assert result.returncode != 0
    assert "without `-P process`" in result.task("export")["error"]


def test_a_parallel_build_with_a_failing_chart_writes_right_dashboards_and_manifest(build):
    build.env["CHARTBUILD_PARALLEL"] = "2"
    before = {e["task"]: e["built_at"] for e in build.manifest()}
    build.break_function("users", "signup_hours", "1 / 0")
    time.sleep(1.1)  # built_at has whole seconds
    User.objects.create(username="late")
    result = build.run()
    assert result.returncode != 0
    assert result.task("users.signup_hours")["result"] == "fail"
    entries = {e["task"]: e for e in build.manifest()}
    assert "ZeroDivisionError" in entries["users.signup_hours"]["error"]
    assert entries["users.signup_hours"]["built_at"] == before["users.signup_hours"]
    assert entries["users.total_users"]["built_at"] > before["users.total_users"]
    page = (build.out / "users" / "index.html").read_text()
    assert '<span class="figure" title="4 users">4</span> <span class="unit">users' in page
    assert 'id="chart-signup_hours"' in page  # its last good output stays on the page


def test_the_lock_is_held_until_doit_has_saved_its_state(tmp_path):
    seed()
    build = Build(tmp_path)
    build.copy_demo_generators()
    process = build.start()
    deadline = time.monotonic() + 60
    while (
        not (build.state / "build.lock").exists()
        or "pid" not in (build.state / "build.lock").read_text()
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    held = lock.acquire(build.state / "build.lock", timeout=120)  # waits for the build
    try:
        import sqlite3

        saved = sqlite3.connect(build.state / "doit.sqlite3")
        names = {row[0] for row in saved.execute("SELECT task_id FROM doit")}
        saved.close()
    finally:
        lock.release(held)
    process.communicate(timeout=60)
    assert {"users.total_users", "shop.revenue_per_month", "gen:users"} <= names


def test_a_build_prints_a_line_per_chart_and_a_summary(build):
    User.objects.create(username="late")
    result = build.run(json_report=False)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == len(USERS)
    assert all(re.fullmatch(r"\[(\d+)/6\] users\.\w+ \d+ ms", line) for line in progress)
    assert [int(line[1:].split("/")[0]) for line in progress] == list(range(1, 7))
    assert re.fullmatch(r"built 6, up to date 8, failed 0; slowest .+; \d+\.\d\d s", lines[-1])


def test_the_json_report_keeps_each_tasks_time(build):
    User.objects.create(username="late")
    result = build.run()
    assert all(result.task(name)["elapsed"] > 0 for name in USERS)


def test_a_build_that_ended_before_its_manifest_leaves_it_due_for_the_next(build):
    assert not (build.state / "manifest.due").exists()  # a build that wrote it clears it
    # what a build killed between a chart's record and the manifest leaves behind
    record = build.state / "records" / "users" / "total_users.json"
    data = json.loads(record.read_text())
    data["built_at"] = "2030-01-01T00:00:00+00:00"
    record.write_text(json.dumps(data))
    (build.state / "manifest.due").touch()
    result = build.run()
    assert result.returncode == 0 and not result.charts
    entries = {e["task"]: e for e in build.manifest()}
    assert entries["users.total_users"]["built_at"] == "2030-01-01T00:00:00+00:00"
    assert not (build.state / "manifest.due").exists()
    assert "manifest" not in build.run().executed  # and then it is up to date again


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_a_build_that_waited_rebuilds_nothing_the_first_one_built(tmp_path, parallel):
    User.objects.create(username="first")
    build = Build(tmp_path, generators=["tests.generators.sleepy", "tests.generators.good"])
    build.env["CHARTBUILD_TEST_SLEEP"] = "2"
    build.env["CHARTBUILD_PARALLEL"] = parallel
    first = build.start()
    wait_until(lambda: building(build), timeout=30)
    second = build.start()  # it waits for the lock
    done = [build.result(p, *p.communicate(timeout=300), True) for p in (first, second)]
    assert [r.returncode for r in done] == [0, 0], done[1].stderr
    assert done[0].charts == {"sleepy.sleepy", "good.users_chart", "good.user_count"}
    assert done[1].charts == set()


def test_the_tasks_an_export_releases_start_the_slowest_chart_the_numbers_then_the_rest(build):
    """doit keeps the tasks waiting for the export in a set: without chartbuild.build.order
    they started in an order that changed from run to run, the slowest chart often last.
    Now the chart whose last build took longest first, then the numbers, as declared, then
    the other charts the longest first (within a power of two of seconds, as declared)."""
    numbers = [
        "shop.total_revenue",
        "shop.orders_count",
        "shop.average_order_value",
        "shop.revenue_this_month",
    ]
    charts = [
        "shop.revenue_per_month",
        "shop.orders_by_status",
        "shop.orders_by_category",
        "shop.top_products",
    ]
    for amount in ("11.00", "12.00", "13.00"):
        costs = json.loads((build.state / "costs.json").read_text())
        took = {task: math.floor(math.log2(costs[task])) for task in charts}
        assert (
            costs[charts[0]]
            == outputs.read_record("shop", "revenue_per_month", build.state).seconds
        )
        Order.objects.update(amount=amount)
        result = build.run("-n", "1")
        assert result.returncode == 0
        started = sorted(
            (t for t in result.tasks if t["name"] in numbers + charts), key=lambda t: t["started"]
        )
        slowest_first = sorted(charts, key=lambda t: -took[t])
        expected = [slowest_first[0], *numbers, *slowest_first[1:]]
        assert [t["name"] for t in started] == expected
