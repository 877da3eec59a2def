"""Time buckets in native SQL give what Django's own functions give, in any time zone."""

import datetime as dt
import zoneinfo

import pytest
from django.db.models.functions import (
    ExtractHour,
    ExtractIsoWeekDay,
    TruncDay,
    TruncMonth,
    TruncWeek,
)
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chartbuild.periods import Day, HourOfDay, Month, Week, Weekday
from demo.shop.models import Order, Product

pytestmark = pytest.mark.django_db

UTC = dt.UTC
#: Around the turn of a month, of a year, and Paris's daylight saving changes of 2024.
MOMENTS = [
    dt.datetime(2024, 1, 31, 22, 30, tzinfo=UTC),
    dt.datetime(2024, 1, 31, 23, 30, tzinfo=UTC),
    dt.datetime(2023, 12, 31, 23, 15, tzinfo=UTC),
    dt.datetime(2024, 3, 31, 0, 59, tzinfo=UTC),
    dt.datetime(2024, 3, 31, 1, 0, tzinfo=UTC),
    dt.datetime(2024, 3, 31, 22, 30, tzinfo=UTC),
    dt.datetime(2024, 10, 27, 0, 59, tzinfo=UTC),
    dt.datetime(2024, 10, 27, 1, 0, tzinfo=UTC),
    dt.datetime(2024, 10, 26, 22, 30, tzinfo=UTC),
    dt.datetime(2024, 6, 30, 21, 59, 59, tzinfo=UTC),
    dt.datetime(1969, 12, 31, 23, 30, tzinfo=UTC),
]
PAIRS = [
    (Day, lambda f: TruncDay(f, output_field=Day.output_field)),
    (Week, lambda f: TruncWeek(f, output_field=Week.output_field)),
    (Month, lambda f: TruncMonth(f, output_field=Month.output_field)),
    (HourOfDay, ExtractHour),
    (Weekday, ExtractIsoWeekDay),
]


@pytest.fixture
def orders():
    product = Product.objects.create(name="Dune", category="books", price="9.50")
    Order.objects.bulk_create(
        [Order(product=product, amount="1.00", created_at=moment) for moment in MOMENTS]
    )


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize(("ours", "djangos"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_buckets_match_djangos_own(orders, zone, ours, djangos):
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        mine = list(Order.objects.order_by("id").values_list(ours("created_at"), flat=True))
        theirs = list(Order.objects.order_by("id").values_list(djangos("created_at"), flat=True))
    assert mine == theirs


def test_on_sqlite_no_python_function_runs_per_row(orders):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite")
    with CaptureQueriesContext(connection) as queries:
        list(
            Order.objects.annotate(m=Month("created_at"), h=HourOfDay("created_at")).values(
                "m", "h"
            )
        )
    assert "django_" not in queries[0]["sql"]  # Django's Python functions are django_*
    assert "strftime" in queries[0]["sql"]


def test_a_month_is_a_date(orders):
    months = {m for m in Order.objects.values_list(Month("created_at"), flat=True)}
    assert dt.date(2024, 1, 1) in months and all(type(m) is dt.date for m in months)
