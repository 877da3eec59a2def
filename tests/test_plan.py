"""A plain build hands doit only the tasks a change made due (real doit runs)."""

import json
import os

import pytest
from django.contrib.auth.models import User

from chartbuild.build import plan
from demo.shop.models import Order
from tests.doit import USERS

pytestmark = pytest.mark.django_db(transaction=True)


def declared(result) -> set[str]:
    """The tasks doit was given (its JSON report names each, run or up to date)."""
    return {t["name"] for t in result.tasks if "." in t["name"] or ":" in t["name"]} | (
        {t["name"] for t in result.tasks} & {"export", "manifest", "assets"}
    )


def save_a_user() -> None:
    user = User.objects.get(username="user0")
    user.first_name = f"{user.first_name}x"
    user.save()


@pytest.mark.parametrize(
    "argv, plain",
    [
        (["doit"], True),
        (["doit", "run"], True),
        (["doit", "-n", "2", "--reporter", "json"], True),
        (["doit", "-f", "dodo.py", "run", "-n", "2"], True),
        (["/venv/lib/doit/__main__.py", "run", "x=1"], True),
        (["doit", "gen:users"], False),
        (["doit", "users.total_users"], False),
        (["doit", "-a"], False),
        (["doit", "list"], False),
        (["doit", "auto"], False),
        (["doit", "--version"], False),
        (["pytest", "tests"], False),
        ([], False),
    ],
)
def test_a_plain_command_is_doit_running_every_task_without_forcing(argv, plain):
    assert plan.plain_command(argv) is plain


def test_a_build_with_nothing_changed_declares_only_its_export(build):
    assert (build.state / "plan.json").exists()
    again = build.run()
    assert again.returncode == 0
    assert declared(again) == {"export"}
    assert build.run("list").stdout.count("users.") == len(USERS)  # list: the whole graph


def test_a_change_declares_its_readers_their_pages_and_the_manifest(build):
    save_a_user()
    result = build.run()
    assert result.returncode == 0
    assert result.charts == USERS
    assert declared(result) == {"export", *USERS, "gen:users", "manifest"}
    entries = {e["task"]: e for e in build.manifest()}
    assert {"shop.revenue_per_month", *USERS} <= set(entries)  # the manifest lists all


def test_the_summary_counts_what_was_left_out_as_up_to_date(build):
    total = len(build.manifest())
    save_a_user()
    said = build.run(json_report=False).stdout
    assert f"built {len(USERS)}, up to date {total - len(USERS)}, failed 0" in said


def test_a_deleted_output_is_made_again(build):
    (build.out / "shop" / "revenue_per_month.svg").unlink()
    result = build.run()
    assert result.charts == {"shop.revenue_per_month"}
    assert (build.out / "shop" / "revenue_per_month.svg").exists()


def test_an_edited_generator_rebuilds_its_charts(build):
    source = build.gens / "users.py"
    source.write_text(source.read_text() + "\n# edited\n")
    result = build.run()
    assert result.charts == USERS


def test_doit_forget_makes_the_task_run_again(build):
    assert build.run("forget", "users.total_users").returncode == 0
    assert build.run().charts == {"users.total_users"}


def test_a_failing_chart_fails_every_build_until_it_is_fixed(build):
    source = build.gens / "users.py"
    original = source.read_text()
    build.break_function("users", "signup_hours", "1 / 0")
    assert build.run().returncode != 0
    again = build.run()
    assert again.returncode != 0
    assert again.charts == {"users.signup_hours"}
    source.write_text(original)  # fixed
    assert build.run().returncode == 0
    assert declared(build.run()) == {"export"}


def test_changes_a_named_build_exported_reach_the_next_plain_build(build):
    order = Order.objects.first()
    order.status = "shipped" if order.status != "shipped" else "paid"
    order.save()
    assert build.run("export").charts == set()  # exported, nothing built
    result = build.run()
    assert result.charts and all(c.startswith("shop.") for c in result.charts)
    assert declared(result) - {"assets"} > result.charts  # every task checked


def test_a_crashed_build_leaves_no_record(build):
    save_a_user()
    (build.state / "plan.json").write_text(json.dumps({"version": 0}))  # unreadable to it
    assert build.run().charts == USERS
    record = plan.load(build.state)
    assert record is not None and record.failed == [] and record.models


def test_a_changed_setting_checks_every_task(build, settings):
    settings.CHARTBUILD_TEST_KNOB = "other"  # any CHARTBUILD_ setting
    assert len(declared(build.run())) > len(USERS)


def test_the_one_off_command_makes_the_same_plan(build):
    save_a_user()
    result = build.run(process=True)
    assert result.returncode == 0, result.stderr
    assert declared(result) == {"export", *USERS, "gen:users", "manifest"}
    nothing = build.run(process=True)
    assert declared(nothing) == {"export"}
    assert os.path.exists(build.state / "plan.json")


def test_a_build_with_nothing_changed_reads_no_catalog(build, monkeypatch):
    """Not even to check the capture triggers' columns: the record keeps them (the
    catalog of 10,000 charts cost a no-op 0.14 s)."""
    from chartbuild.build import actions
    from chartbuild.declare import catalog

    read = []
    monkeypatch.setattr(catalog, "load", lambda *a, **k: read.append("load"))
    monkeypatch.setattr(catalog, "cached", lambda *a, **k: read.append("cached"))
    monkeypatch.setattr(actions, "_capture_checked", set())  # as in a process of its own
    again = build.run()
    assert again.returncode == 0 and declared(again) == {"export"}
    assert read == []
    record = plan.load(build.state)
    assert record is not None
    assert record.columns["auth_user"] == ["date_joined", "is_active", "is_staff"]
