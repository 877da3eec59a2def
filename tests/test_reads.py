"""Undeclared reads: what a chart's SQL really reads, against what it declares."""

import pytest
from django.contrib.auth.models import User
from django.db import connection

from chartbuild.build import reads
from chartbuild.checks import check_configuration
from tests.doit import Build, seed

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_tables_of_orm_queries_and_raw_sql_are_found():
    with reads.recording() as recorder:
        list(User.objects.filter(groups__name="staff"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM shop_order o JOIN shop_product p ON 1 = 1")
    assert recorder.models() == [
        "auth.group",
        "auth.user",
        "auth.user_groups",
        "shop.order",
        "shop.product",
    ]


def test_raw_sql_that_lists_its_tables_or_reads_them_in_a_subquery_is_seen():
    with reads.recording() as recorder, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM auth_user u, shop_order o WHERE o.customer_id = u.id")
        cursor.execute(
            "SELECT n FROM (SELECT COUNT(*) AS n FROM shop_product) AS counted"
            " WHERE n > (SELECT COUNT(*) FROM auth_group)"
        )
    assert recorder.models() == ["auth.group", "auth.user", "shop.order", "shop.product"]


def test_a_column_named_like_a_table_is_no_read():
    assert reads.tables_in('SELECT "auth_user"."id" AS "shop_order" FROM "auth_user"') == {
        "auth_user"
    }


def test_reads_through_declared_models_are_declared():
    read = ["auth.group", "auth.user", "auth.user_groups", "shop.order"]
    assert reads.undeclared(read, ["auth.user", "auth.group"]) == ["shop.order"]
    assert reads.undeclared(["shop.order"], ["shop.order"]) == []


@pytest.fixture
def sneaky(settings, tmp_path):
    seed()
    build = Build(tmp_path, generators=["tests.generators.sneaky"])
    settings.CHARTBUILD_GENERATORS = ["tests.generators.sneaky"]
    settings.CHARTBUILD_STATE_DIR = build.state
    return build


def test_an_undeclared_read_is_a_warning_and_a_manifest_entry(sneaky):
    result = sneaky.run()
    assert result.returncode == 0
    assert "sneaky.sneaky reads shop.order but does not declare it" in result.stderr
    assert "sneaky.honest" not in result.stderr
    entries = {e["task"]: e for e in sneaky.manifest()}
    assert entries["sneaky.sneaky"]["reads"] == ["shop.order"]
    assert entries["sneaky.honest"]["reads"] == ["auth.user", "auth.user_groups"]
    (warning,) = [m for m in check_configuration() if m.id == "chartbuild.W004"]
    assert "sneaky.sneaky reads shop.order" in warning.msg
    assert warning.obj == "sneaky.sneaky"


def test_strict_reads_fail_that_task_only(sneaky):
    sneaky.env["CHARTBUILD_STRICT_READS"] = "1"
    result = sneaky.run()
    assert result.returncode in (1, 2)  # a task failed (and the dashboard that waits on it)
    assert result.task("sneaky.sneaky")["result"] == "fail"
    assert "sneaky.sneaky reads shop.order" in result.task("sneaky.sneaky")["error"]
    assert "CHARTBUILD_STRICT_READS" in result.task("sneaky.sneaky")["error"]
    assert result.task("sneaky.honest")["result"] == "success"
    assert not (sneaky.out / "sneaky" / "sneaky.json").exists()


def test_a_column_that_shares_a_tables_name_is_no_read():
    recorder = reads.Queries()
    recorder.statements = ['SELECT "t"."shop_order" FROM "auth_user" "t" WHERE "shop_order" = 1']
    assert recorder.models() == ["auth.user"]
