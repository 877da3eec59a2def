"""Rollups kept by the database: declared, made by migrate, folded, verified, and equal to the
full query after any sequence of writes (a property test, on SQLite and PostgreSQL)."""

import datetime as dt
import json
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.db.models import Avg, Count, F, Max, Min, Q, Sum
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chartbuild.checks import check_capture
from chartbuild.declare.registry import model_label
from chartbuild.models import RollupState
from chartbuild.periods import Month
from chartbuild.rollups import Rollup, store
from chartbuild.rollups.sql import EARLIER, RollupError
from demo.shop.models import Order, Product
from generators.shop import orders as shop_orders
from generators.shop import sales

pytestmark = pytest.mark.django_db(transaction=True)

UTC = dt.UTC

ORDERS = Rollup(
    "test_orders",
    model=Order,
    filter=~Q(status="cancelled"),
    by={"month": Month("created_at", tzinfo=UTC), "status": "status"},
    aggregates={
        "revenue": Sum("amount"),
        "orders": Count("id"),
        "average": Avg("amount"),
        "low": Min("amount"),
        "high": Max("amount"),
        "customers": Count("customer"),
        "customer_sum": Sum("customer_id"),
        "customer_low": Min("customer_id"),
        "customer_high": Max("customer_id"),
    },
)
#: The same without Min or Max: an update's buckets whose parts cancel out are left out.
SUMS = Rollup(
    "test_sums",
    model=Order,
    filter=ORDERS.filter,
    by=ORDERS.by,
    aggregates={k: a for k, a in ORDERS.aggregates.items() if not isinstance(a, Min | Max)},
)
STATUSES = ("paid", "shipped", "cancelled")
MONTHS = [dt.datetime(2025, m, 15, 12, tzinfo=UTC) for m in (1, 2, 3)]


def kept(rollup):
    store.make(rollup)
    yield rollup
    store.drop(rollup)
    RollupState.objects.filter(name=rollup.name).delete()


@pytest.fixture
def made():
    yield from kept(ORDERS)


@pytest.fixture
def sums():
    yield from kept(SUMS)


@pytest.fixture
def people():
    product = Product.objects.create(name="pen", category="office", price=Decimal("1.00"))
    customers = [User.objects.create(username=f"c{i}") for i in range(3)]
    return product, customers


def order(product, customer, *, status="paid", amount="10.00", month=0):
    return Order(
        product=product,
        customer=customer,
        status=status,
        quantity=1,
        amount=Decimal(amount),
        created_at=MONTHS[month],
    )


def assert_equal_to_the_full_query(rollup=ORDERS):
    assert store.differences(rollup) == []


def test_make_fills_from_the_rows_already_there(people):
    product, (ada, *_) = people
    Order.objects.bulk_create([order(product, ada, amount="5.00"), order(product, None)])
    store.make(ORDERS)
    try:
        (row,) = store.read(ORDERS)
        assert row["orders"] == 2
        assert row["revenue"] == Decimal("15.00")
        assert row["customers"] == 1
        assert row["month"] == dt.date(2025, 1, 1)
        assert store.status([ORDERS])[0].state == store.MAINTAINED
    finally:
        store.drop(ORDERS)
        RollupState.objects.filter(name=ORDERS.name).delete()


def test_each_kind_of_write_reaches_the_rollup(made, people):
    product, (ada, bob, _) = people
    first = Order.objects.create(**vars_of(order(product, ada)))
    Order.objects.bulk_create([order(product, bob, amount="3.50", month=1) for _ in range(3)])
    Order.objects.filter(month_of(1)).update(status="shipped")
    first.amount = Decimal("99.99")
    first.save()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM shop_order WHERE amount = %s", [Decimal("99.99")])
    assert_equal_to_the_full_query()
    rows = {(r["month"], r["status"]): r for r in store.read(ORDERS)}
    assert rows[(dt.date(2025, 2, 1), "shipped")]["orders"] == 3
    assert (dt.date(2025, 1, 1), "paid") not in rows  # a bucket that empties disappears


def differences_kept(rollup) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM chartbuild_rollup_{rollup.name}_delta")
        return cursor.fetchone()[0]


def test_an_update_that_leaves_its_columns_as_they_were_adds_no_difference(made, sums, people):
    """On SQLite; PostgreSQL appends both sides of an update's rows (cheaper for a save())."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's row triggers")
    product, (ada, *_) = people
    first = Order.objects.create(**vars_of(order(product, ada)))
    store.fold(ORDERS)
    store.fold(SUMS)
    Order.objects.update(quantity=F("quantity") + 1)  # sets a column no rollup reads
    assert differences_kept(ORDERS) == 0  # not even a Min's: its trigger did not fire
    first.quantity = 5
    first.save()  # sets every column, quantity alone to another value
    Order.objects.update(amount=F("amount"))  # sets one it reads, to the same value
    assert differences_kept(SUMS) == 0
    first.amount = Decimal("12.00")
    first.save()
    assert differences_kept(SUMS) == 1  # one bucket: its sum changed, its count did not
    assert_equal_to_the_full_query(SUMS)


def test_a_rolled_back_write_changes_nothing(made, people):
    product, (ada, *_) = people
    Order.objects.create(**vars_of(order(product, ada)))
    before = store.read(ORDERS)
    with pytest.raises(RuntimeError), transaction.atomic():
        Order.objects.create(**vars_of(order(product, ada, amount="1.00")))
        raise RuntimeError
    assert store.read(ORDERS) == before


def test_deleting_the_extreme_recomputes_its_bucket(made, people):
    product, (ada, *_) = people
    Order.objects.bulk_create([order(product, ada, amount=a) for a in ("1.00", "2.00", "9.00")])
    Order.objects.filter(amount__in=[Decimal("1.00"), Decimal("9.00")]).delete()
    (row,) = store.read(ORDERS)
    assert (row["low"], row["high"]) == (Decimal("2.00"), Decimal("2.00"))


def test_a_bucket_of_nulls_counts_as_sql_counts(made, people):
    product, _ = people
    Order.objects.create(**vars_of(order(product, None)))
    (row,) = store.read(ORDERS)
    assert row["customers"] == 0
    assert row["customer_sum"] is None
    assert row["customer_low"] is None


def test_truncate_empties_it(made, people, postgres):
    product, (ada, *_) = people
    Order.objects.create(**vars_of(order(product, ada)))
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE shop_order")
    assert store.read(ORDERS) == []


def test_making_it_again_drops_the_functions_of_an_earlier_version(made, postgres):
    earlier = f"chartbuild_rollup_{ORDERS.name}_insert_{EARLIER[0]}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE FUNCTION {earlier}() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RETURN NULL; END $$"
        )
    store.make(ORDERS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_proc WHERE proname = %s", [earlier])
        assert cursor.fetchone()[0] == 0


def test_two_writers_of_one_bucket_do_not_wait_for_each_other(made, people, postgres):
    """Each writer appends its difference: the second commits while the first is open."""
    product, (ada, bob, _) = people
    first_wrote, second_done = threading.Event(), threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                Order.objects.create(**vars_of(order(product, ada)))
                first_wrote.set()
                assert second_done.wait(10), "the second writer waited for the first"
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_wrote.wait(10)
    Order.objects.create(**vars_of(order(product, bob, amount="2.00")))
    second_done.set()
    thread.join(10)
    (row,) = store.read(ORDERS)
    assert row["orders"] == 2
    assert_equal_to_the_full_query()


def test_verify_finds_and_repairs_a_rollup_damaged_by_hand(people):
    """The demo's shop_sales, made by the test database's migrate."""
    product, (ada, *_) = people
    Order.objects.create(**vars_of(order(product, ada)))
    assert store.state(sales) == store.MAINTAINED
    store.fold(sales)
    with connection.cursor() as cursor:
        cursor.execute('UPDATE chartbuild_rollup_shop_sales SET "orders" = 41')
    out = StringIO()
    with pytest.raises(CommandError, match="differed"):
        call_command("chartbuild", "verify", "shop_sales", stdout=out)
    assert "orders 41 != 1" in out.getvalue()
    assert store.differences(sales) == []  # filled again
    out = StringIO()
    call_command("chartbuild", "verify", stdout=out)
    assert "shop_sales: equal to the full query" in out.getvalue()
    assert "shop_orders: equal to the full query" in out.getvalue()


def test_rollups_lists_them_with_their_state(people):
    out = StringIO()
    call_command("chartbuild", "rollups", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["rollup", "base", "table", "state", "buckets", "pending"]
    assert lines[1].split()[:3] == ["shop_orders", "shop_order", "maintained"]
    assert lines[2].split()[:3] == ["shop_sales", "shop_order", "maintained"]


def test_orm_capture_reads_the_full_query(settings, people):
    settings.CHARTBUILD_CAPTURE = "orm"
    product, (ada, *_) = people
    Order.objects.create(**vars_of(order(product, ada)))
    assert store.state(ORDERS) == store.RECOMPUTED
    (row,) = store.read(ORDERS)
    assert row["orders"] == 1


def test_a_chart_that_reads_a_rollup_depends_on_its_base_model():
    assert model_label(ORDERS) == "shop.order"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"aggregates": {"n": Count("id", distinct=True)}}, "distinct or filter"),
        ({"aggregates": {"n": Sum("amount") * 2}}, "use Count, Sum"),
        ({"aggregates": {}}, "no aggregate"),
        ({"aggregates": {"status": Count("id")}}, "both bucket and aggregate"),
    ],
)
def test_a_declaration_it_cannot_keep_is_refused(options, message):
    with pytest.raises(RollupError, match=message):
        Rollup("refused", model=Order, **{"by": {"status": "status"}, **options})


def test_a_filter_on_another_table_is_refused():
    rollup = Rollup(
        "joined", model=Order, filter=Q(product__name="pen"), by={}, aggregates={"n": Count("id")}
    )
    with pytest.raises(RollupError, match="no joins"):
        store.make(rollup)


def vars_of(unsaved: Order) -> dict:
    return {
        f.attname: getattr(unsaved, f.attname)
        for f in Order._meta.concrete_fields
        if f.attname != "id"
    }


def month_of(index: int) -> Q:
    return Q(created_at=MONTHS[index])


# -- the property ------------------------------------------------------------------------

amounts = st.sampled_from([Decimal("1.00"), Decimal("2.50"), Decimal("99.99")]) | st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2
)
writes = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"),
            st.sampled_from(STATUSES),
            st.integers(0, 1),
            amounts,
            st.integers(-1, 2),
        ),
        st.tuples(
            st.just("bulk_create"),
            st.lists(amounts, min_size=1, max_size=4),
            st.sampled_from(STATUSES),
            st.integers(0, 2),
        ),
        st.tuples(
            st.just("move"), st.integers(0, 50), st.sampled_from(STATUSES), st.integers(0, 2)
        ),
        st.tuples(st.just("bulk_update"), st.integers(0, 50), amounts, st.integers(-1, 2)),
        st.tuples(st.just("update"), st.sampled_from(STATUSES), st.sampled_from(STATUSES)),
        st.tuples(st.just("delete_extreme"), st.sampled_from(["amount", "-amount"])),
        st.tuples(st.just("delete_status"), st.sampled_from(STATUSES)),
        st.tuples(st.just("raw"), amounts, st.integers(0, 2)),
        st.tuples(st.just("rolled_back"), amounts),
        st.tuples(st.just("empty")),
        st.tuples(st.just("concurrent"), amounts, st.integers(0, 1)),
        st.tuples(st.just("unread"), st.integers(0, 50)),
    ),
    min_size=1,
    max_size=15,
)


def both(write) -> None:
    """``write`` in two transactions open at once on one bucket (PostgreSQL; SQLite has one
    writer at a time, so there one after the other): neither waits for the other."""
    if connection.vendor != "postgresql":
        write()
        write()
        return
    wrote, committed = threading.Event(), threading.Event()

    def other() -> None:
        try:
            with transaction.atomic():
                write()
                wrote.set()
                committed.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other)
    thread.start()
    assert wrote.wait(10)
    with transaction.atomic():
        write()
    committed.set()
    thread.join(10)


def apply(write, product, customers):
    kind, *args = write
    pick = [None, *customers]
    if kind == "create":
        status, month, amount, who = args
        Order.objects.create(
            **vars_of(order(product, pick[who + 1], status=status, amount=amount, month=month))
        )
    elif kind == "bulk_create":
        several, status, month = args
        Order.objects.bulk_create(
            [order(product, customers[0], status=status, amount=a, month=month) for a in several]
        )
    elif kind == "move":
        index, status, month = args
        found = Order.objects.order_by("id")[index : index + 1].first()
        if found is not None:
            found.status, found.created_at = status, MONTHS[month]
            found.save()
    elif kind == "bulk_update":
        index, amount, who = args
        found = list(Order.objects.order_by("id")[index : index + 3])
        for each in found:
            each.amount, each.customer = amount, pick[who + 1]
        Order.objects.bulk_update(found, ["amount", "customer"])
    elif kind == "update":
        old, new = args
        Order.objects.filter(status=old).update(status=new)
    elif kind == "delete_extreme":
        (ordering,) = args
        found = Order.objects.order_by(ordering, "id").first()
        if found is not None:
            found.delete()
    elif kind == "delete_status":
        Order.objects.filter(status=args[0]).delete()
    elif kind == "raw":
        amount, month = args
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE shop_order SET amount = %s WHERE created_at = %s",
                [amount, MONTHS[month]],
            )
    elif kind == "rolled_back":
        try:
            with transaction.atomic():
                Order.objects.create(**vars_of(order(product, None, amount=args[0])))
                Order.objects.update(status="cancelled")
                raise RuntimeError
        except RuntimeError:
            pass
    elif kind == "concurrent":
        amount, month = args
        both(
            lambda: Order.objects.create(
                **vars_of(order(product, None, amount=amount, month=month))
            )
        )
    elif kind == "unread":  # sets what no rollup reads, or what it reads to the same value
        found = Order.objects.order_by("id")[args[0] : args[0] + 1].first()
        if found is not None:
            found.quantity += 1
            found.save()
        Order.objects.update(quantity=F("quantity") + 1, amount=F("amount"))
    elif kind == "empty":
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("TRUNCATE shop_order")
            else:
                cursor.execute("DELETE FROM shop_order")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(writes=writes, folds=st.lists(st.integers(0, 11), max_size=3))
@example(
    writes=[
        ("create", "paid", 0, Decimal("1.00"), 0),
        ("create", "paid", 0, Decimal("2.50"), 1),
        ("delete_extreme", "amount"),
    ],
    folds=[0],
)
def test_after_any_writes_the_rollup_equals_the_full_query(made, sums, people, writes, folds):
    product, customers = people
    Order.objects.all().delete()
    for rollup in (ORDERS, SUMS):
        store.fold(rollup)
    for step, write in enumerate(writes):
        apply(write, product, customers)
        if step in folds:
            store.fold(ORDERS)  # a build in the middle of the writes
    for rollup in (ORDERS, SUMS):
        assert store.state(rollup) == store.MAINTAINED
        assert_equal_to_the_full_query(rollup)


def test_a_database_that_does_not_keep_rollups_is_told(settings):
    settings.CHARTBUILD_CAPTURE = "orm"
    ids = [m.id for m in check_capture(databases=["default"])]
    assert "chartbuild.W007" in ids


def test_a_rollup_migrate_has_not_made_is_told():
    store.drop(sales)
    RollupState.objects.filter(name="shop_sales").delete()
    try:
        messages = [m for m in check_capture(databases=["default"]) if m.id == "chartbuild.W008"]
        assert [m.obj for m in messages] == ["shop_sales"]
        assert store.read(sales) == store.full(sales)  # read by the full query meanwhile
        out = StringIO()
        call_command("migrate", stdout=out)
        assert "chartbuild rollups: made shop_sales" in out.getvalue()
        assert store.state(sales) == store.MAINTAINED
    finally:
        store.sync([sales, shop_orders], drop_others=False)


def test_a_chart_of_a_rollup_is_rebuilt_by_its_base_table_and_nothing_else(build):
    """A real doit run over copies of the demo's generators: revenue_per_month reads the
    shop_sales rollup; its rows follow a raw UPDATE of the orders."""
    user = User.objects.get(username="user0")
    user.first_name = "Ada"
    user.save()
    assert "shop.revenue_per_month" not in build.run().charts
    with connection.cursor() as cursor:
        cursor.execute("UPDATE shop_order SET amount = 20")
    result = build.run()
    assert result.returncode == 0
    assert {"shop.revenue_per_month", "shop.orders_by_status", "shop.top_products"} <= result.charts
    spec = json.loads((build.out / "shop" / "revenue_per_month.vl.json").read_text())
    assert [row["revenue"] for row in spec["data"]["values"]] == [60.0]
    entry = next(e for e in build.manifest() if e["task"] == "shop.revenue_per_month")
    assert entry["rollups"] == ["shop_sales"]
    assert not any(r.startswith("chartbuild.") for r in entry["reads"])  # its own tables


def test_a_changed_declaration_is_made_again_and_a_removed_one_dropped(made, people):
    product, (ada, *_) = people
    Order.objects.create(**vars_of(order(product, ada)))
    changed = Rollup(
        "test_orders_by_month",
        model=Order,
        by={"month": Month("created_at", tzinfo=UTC)},
        aggregates={"orders": Count("id")},
    )
    report = store.sync([ORDERS, changed], drop_others=False)
    assert report.made == ["test_orders_by_month"]
    assert store.read(changed) == [{"month": dt.date(2025, 1, 1), "orders": 1}]
    changed.aggregates["revenue"] = Sum("amount")  # what an edited generator declares
    report = store.sync([ORDERS, changed], drop_others=False)
    assert report.remade == ["test_orders_by_month"]
    assert store.read(changed)[0]["revenue"] == Decimal("10.00")
    report = store.sync([ORDERS, sales, shop_orders])
    assert report.dropped == ["test_orders_by_month"]
    assert "chartbuild_rollup_test_orders_by_month" not in connection.introspection.table_names()


def test_migrate_drops_the_rollups_no_generator_declares(settings):
    settings.CHARTBUILD_GENERATORS = ["generators.users"]
    settings.CHARTBUILD_AUTODISCOVER = False
    try:
        out = StringIO()
        call_command("migrate", stdout=out)
        assert "chartbuild rollups: dropped shop_orders, shop_sales" in out.getvalue()
        assert not RollupState.objects.exists()
    finally:
        store.sync([sales, shop_orders], drop_others=False)


@pytest.mark.parametrize("capture", ["auto", "orm"])
def test_rows_add_buckets_up_and_filter_them_in_the_database(made, people, settings, capture):
    settings.CHARTBUILD_CAPTURE = capture  # kept by the database, or the full query
    product, (ada, bob, _) = people
    Order.objects.bulk_create(
        [
            order(product, ada, status="paid", amount="1.00", month=0),
            order(product, bob, status="shipped", amount="2.00", month=0),
            order(product, None, status="paid", amount="4.00", month=1),
            order(product, ada, status="cancelled", amount="8.00", month=1),
        ]
    )
    by_month = ORDERS.rows(by=["month"], order_by=["month"])
    assert [(r["month"], r["orders"], r["revenue"], r["high"]) for r in by_month] == [
        (dt.date(2025, 1, 1), 2, Decimal("3.00"), Decimal("2.00")),
        (dt.date(2025, 2, 1), 1, Decimal("4.00"), Decimal("4.00")),
    ]
    (total,) = ORDERS.rows(by=[])
    assert (total["orders"], total["revenue"], total["customers"]) == (3, Decimal("7.00"), 2)
    paid = ORDERS.rows(status="paid", order_by=["-revenue"])
    assert [r["revenue"] for r in paid] == [Decimal("4.00"), Decimal("1.00")]
    assert ORDERS.rows(by=["status"], month=dt.date(2025, 2, 1)) == [
        {
            "status": "paid",
            "revenue": Decimal("4.00"),
            "orders": 1,
            "average": Decimal("4.00"),
            "low": Decimal("4.00"),
            "high": Decimal("4.00"),
            "customers": 0,
            "customer_sum": None,
            "customer_low": None,
            "customer_high": None,
        }
    ]
    with pytest.raises(RollupError, match="not one of its buckets"):
        ORDERS.rows(by=["amount"])
