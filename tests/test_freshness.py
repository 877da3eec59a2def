"""Every committed write reaches its charts, whatever issued it: real doit runs."""

import json
import subprocess
import sys
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.db.models import Sum

from demo.shop.models import Order, Product
from tests.doit import Build, database_url

pytestmark = pytest.mark.django_db(transaction=True)


def readers(build: Build, model: str) -> set[str]:
    return {e["task"] for e in build.manifest() if model in e["models"]}


def number(build: Build, task: str):
    generator, name = task.split(".")
    return json.loads((build.out / generator / f"{name}.json").read_text())["value"]


def revenue() -> float:
    total = Order.objects.exclude(status="cancelled").aggregate(s=Sum("amount"))["s"]
    return float(Decimal(total or 0).quantize(Decimal("0.01")))


def another_process(sql: str) -> None:
    """Run ``sql`` from a program that is not Django: the sqlite3 module, or psql."""
    if connection.vendor == "sqlite":
        program = (
            "import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1])\n"
            "db.execute(sys.argv[2])\n"
            "db.commit()\n"
        )
        command = [sys.executable, "-c", program, connection.settings_dict["NAME"], sql]
    else:
        command = ["psql", database_url().replace("postgres://", "postgresql://"), "-c", sql]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def _update():
    Order.objects.filter(status="paid").update(status="cancelled")


def _bulk_create():
    product = Product.objects.get()
    Order.objects.bulk_create(
        [Order(product=product, status="paid", quantity=1, amount="20.00") for _ in range(5)]
    )


def _bulk_update():
    orders = list(Order.objects.all())
    for order in orders:
        order.amount = Decimal("12.25")
    Order.objects.bulk_update(orders, ["amount"])


def _queryset_delete():
    Order.objects.filter(pk=Order.objects.order_by("pk").values("pk")[:1]).delete()


def _raw_sql():
    with connection.cursor() as cursor:
        cursor.execute("UPDATE shop_order SET amount = amount + 1")


def _another_program():
    another_process("UPDATE shop_order SET amount = amount * 2")


WRITES = {
    "update": _update,
    "bulk_create": _bulk_create,
    "bulk_update": _bulk_update,
    "queryset delete": _queryset_delete,
    "raw SQL": _raw_sql,
    "another program": _another_program,
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_a_write_rebuilds_exactly_its_readers_with_the_databases_values(build, write):
    write()
    result = build.run()
    assert result.returncode == 0, result.stderr
    assert result.charts == readers(build, "shop.order")
    assert number(build, "shop.orders_count") == Order.objects.count()
    assert number(build, "shop.total_revenue") == revenue()
    assert build.run().charts == set()


def test_a_bulk_create_of_users_reaches_the_user_charts(build):
    User.objects.bulk_create([User(username=f"bulk{i}") for i in range(7)])
    another_process("UPDATE auth_user SET is_active = false WHERE username = 'bulk0'")
    result = build.run()
    assert result.charts == readers(build, "auth.user")
    assert number(build, "users.total_users") == 10


def test_a_rolled_back_write_rebuilds_nothing(build):
    with pytest.raises(RuntimeError), transaction.atomic():
        _update()
        _bulk_create()
        _raw_sql()
        raise RuntimeError("roll back")
    assert build.run().charts == set()


def test_a_save_whose_event_is_lost_still_reaches_its_charts(build, monkeypatch):
    """In autocommit mode mqueue's event is a second transaction; should it fail, the
    change committed without an event. The capture is part of the write itself."""
    import mqueue.models

    def fail(*args, **kwargs):
        raise DatabaseError("the event insert failed")

    monkeypatch.setattr(mqueue.models.MEvent, "save", fail)
    order = Order.objects.first()
    order.amount = Decimal("99.00")
    with pytest.raises(DatabaseError):
        order.save()
    assert Order.objects.get(pk=order.pk).amount == Decimal("99.00")  # the row committed
    result = build.run()
    assert result.charts == readers(build, "shop.order")
    assert number(build, "shop.total_revenue") == revenue()
