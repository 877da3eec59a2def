"""``manage.py chartbuild why``: why a chart was built, down to the writes; which charts a
write to a model rebuilds. Real builds, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory

from chartbuild import writes_by
from chartbuild.middleware import WritesByUserMiddleware

pytestmark = pytest.mark.django_db(transaction=True)


def why(*args: str) -> str:
    out = io.StringIO()
    call_command("chartbuild", "why", *args, stdout=out)
    return out.getvalue()


def last_build(task: str) -> dict:
    (build,) = json.loads(why(task, "--format", "json", "--last", "1"))["builds"]
    return build


def test_an_update_from_a_request_is_told_with_its_table_rows_time_and_user(served_build):
    alice = User.objects.create_user("alice", password="pw")
    assert served_build.run().returncode == 0  # her account is built

    def view(request):
        User.objects.filter(username__startswith="user").update(is_active=False)
        return HttpResponse("done")

    request = RequestFactory().post("/rename/")
    request.user = alice
    before = dt.datetime.now(dt.UTC)
    assert WritesByUserMiddleware(view)(request).status_code == 200
    after = dt.datetime.now(dt.UTC)
    assert served_build.run().returncode == 0

    build = last_build("users.total_users")
    assert build["outcome"] == "built"
    (changed,) = [r for r in build["why"] if r["kind"] == "changed"]
    assert changed["model"] == "auth.user"
    (export,) = changed["exports"]
    told = export["tables"]["auth_user"]
    assert told["operations"]["UPDATE"] == {"records": 1, "rows": 3}
    (sample,) = told["samples"]
    assert sample["operation"] == "UPDATE" and sample["rows"] == 3
    assert sample["by"] == "alice (POST /rename/)"
    committed = dt.datetime.fromisoformat(sample["at"])
    assert before - dt.timedelta(seconds=1) <= committed <= after + dt.timedelta(seconds=1)
    if connection.vendor == "postgresql":
        assert isinstance(sample["transaction"], int)
    text = why("users.total_users")
    assert "auth.user changed: auth_user written by UPDATE (3 rows)" in text
    assert "by alice (POST /rename/)" in text


def test_a_generator_edit_is_told_as_a_code_change(served_build):
    source = served_build.gens / "users.py"
    source.write_text(source.read_text() + "\n# a new comment\n")
    assert served_build.run().returncode == 0
    reasons = last_build("users.total_users")["why"]
    assert [r["kind"] for r in reasons] == ["code"]
    assert reasons[0]["path"].endswith("users.py")
    assert "its generator's code changed" in why("users.total_users")


def test_the_first_build_and_a_forced_one_say_so(served_build):
    assert last_build("shop.orders_count")["why"] == [{"kind": "never built"}]
    assert served_build.run("-a", "shop.orders_count").returncode == 0
    assert [r["kind"] for r in last_build("shop.orders_count")["why"]] == ["forced"]


def test_a_write_in_a_writes_by_block_names_it(served_build):
    postgres = connection.vendor == "postgresql"
    with writes_by("nightly import"), connection.cursor() as cursor:
        if postgres:  # the program a record names
            cursor.execute("SET application_name = 'importer'")
        cursor.execute("UPDATE shop_order SET quantity = quantity + 1")
        if postgres:
            cursor.execute("RESET application_name")
    assert served_build.run().returncode == 0
    (changed,) = [r for r in last_build("shop.orders_count")["why"] if r["kind"] == "changed"]
    assert changed["rollups"] == ["shop_orders"]  # the number reads the rollup of orders
    (sample,) = changed["exports"][0]["tables"]["shop_order"]["samples"]
    assert sample["by"] == "nightly import" and sample["rows"] == 3
    assert sample["program"] == ("importer" if postgres else None)
    assert "(read through rollup shop_orders)" in why("shop.orders_count")


def test_for_a_model_it_lists_the_charts_a_write_rebuilds_and_why_not_the_others(served_build):
    data = json.loads(why("shop.order", "--format", "json"))
    assert data["tables"] == ["shop_order"]
    verdicts = {c["task"]: c for c in data["charts"]}
    assert verdicts["shop.revenue_per_month"]["rebuilds"] is True
    assert verdicts["shop.revenue_per_month"]["why"] == "reads shop_order through shop.order"
    assert verdicts["users.total_users"] == {
        "task": "users.total_users",
        "rebuilds": False,
        "why": "reads none of shop_order",
    }
    text = why("shop.order")
    assert text.startswith("a write to shop.order (shop_order):\nrebuilds ")
    with pytest.raises(Exception, match="neither a chart or number"):
        why("shop.nothing")


def test_staff_read_why_a_chart_was_last_built_on_its_page(served_build):
    User.objects.create_user("boss", password="pw", is_staff=True)
    User.objects.create_user("reader", password="pw")
    User.objects.filter(username="user0").update(is_active=False)
    assert served_build.run().returncode == 0
    staff, reader = Client(), Client()
    staff.login(username="boss", password="pw")
    reader.login(username="reader", password="pw")
    page = staff.get("/charts/users/total_users/").content.decode()
    assert "Why it was last built" in page
    assert "auth.user changed: auth_user written by INSERT (2 rows), UPDATE (1 row)" in page
    User.objects.filter(username="reader").update(is_staff=False)
    other = reader.get("/charts/users/total_users/")
    assert "Why it was last built" not in other.content.decode()
