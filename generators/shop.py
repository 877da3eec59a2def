"""Charts and numbers about the shop: they read ``shop.Order`` and ``shop.Product`` only.

Revenue counts every order that was not cancelled. Every chart and number of the orders
reads one of two rollups, which the database keeps as orders are written: a new order
costs what it changed, not a new pass over every order.
"""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import altair as alt
from django.conf import settings
from django.db.models import Count, Q, Sum

from chartbuild import Trend, chart, number
from chartbuild.periods import Month
from chartbuild.rollups import Rollup
from demo.shop.models import Order, Product

#: On the site: the dashboard's title, and who may see its charts (anyone who may view orders).
TITLE = "Shop"
PERMISSION = "shop.view_order"

WIDTH = 560
CENT = Decimal("0.01")
ZONE = ZoneInfo(settings.TIME_ZONE)


def _money(value: Decimal | float | None) -> float:
    """An amount rounded to cents (SQLite sums decimals as floats), for Vega-Lite."""
    return round(float(value or 0), 2)


#: Revenue and orders per month and product, cancelled orders left out.
sales = Rollup(
    "shop_sales",
    model=Order,
    filter=~Q(status=Order.Status.CANCELLED),
    by={"month": Month("created_at", tzinfo=ZONE), "product": "product_id"},
    aggregates={"revenue": Sum("amount"), "orders": Count("id")},
)
#: Orders per month, status and product, cancelled ones included.
orders = Rollup(
    "shop_orders",
    model=Order,
    by={
        "month": Month("created_at", tzinfo=ZONE),
        "status": "status",
        "product": "product_id",
    },
    aggregates={"orders": Count("id")},
)


@chart(models=[sales])
def revenue_per_month() -> alt.LayerChart:
    """Revenue per month"""
    current = Month.current(ZONE)
    values = [
        {
            "month": row["month"].isoformat(),
            "revenue": _money(row["revenue"]),
            "orders": row["orders"],
            "partial": row["month"] >= current,
            "dashed": False,
        }
        for row in sales.rows(by=["month"], order_by=["month"])
    ]
    if values and values[-1]["partial"]:
        for value in values[-2:]:
            value["dashed"] = True  # the line from the last whole month to this one
    month = alt.X("utcyearmonth(month):T", title="Month")
    revenue = alt.Y("revenue:Q", title="Revenue (EUR)")
    base = alt.Chart(alt.Data(values=values)).encode(
        x=month,
        y=revenue,
        tooltip=[
            alt.Tooltip("utcyearmonth(month):T", title="Month"),
            alt.Tooltip("revenue:Q", title="Revenue (EUR)", format=",.2f"),
            alt.Tooltip("orders:Q", title="Orders"),
            alt.Tooltip("partial:N", title="Month so far"),
        ],
    )
    # the month under way is drawn dashed and lighter: its drop is only the days to come
    done = base.transform_filter("!datum.partial")
    return alt.layer(
        done.mark_area(line=True, opacity=0.5),
        done.mark_point(filled=True),
        base.transform_filter("datum.dashed").mark_line(strokeDash=[4, 3], opacity=0.6),
        base.transform_filter("datum.partial").mark_point(opacity=0.6),
    ).properties(title="Revenue per month", width=WIDTH, height=280)


@chart(models=[orders])
def orders_by_status() -> alt.Chart:
    """Orders by status"""
    rows = orders.rows(by=["status"], order_by=["status"])
    labels = dict(Order.Status.choices)
    values = [
        {"status": str(labels.get(row["status"], row["status"])), "orders": row["orders"]}
        for row in rows
    ]
    return (
        alt.Chart(alt.Data(values=values), title="Orders by status")
        .mark_arc(innerRadius=60)
        .encode(
            theta=alt.Theta("orders:Q", stack=True),
            color=alt.Color(
                "status:N",
                title="Status",
                scale=alt.Scale(domain=[str(label) for label in labels.values()]),
            ),
            tooltip=[
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("orders:Q", title="Orders"),
            ],
        )
        .properties(width=WIDTH, height=280)
    )


@chart(models=[orders, Product])
def orders_by_category() -> alt.Chart:
    """Orders per category and month"""
    category = dict(Product.objects.values_list("id", "category"))
    counted: dict[tuple[str, str], int] = {}
    for row in orders.rows(by=["month", "product"]):  # a row per month and product
        key = (row["month"].isoformat(), category.get(row["product"], ""))
        counted[key] = counted.get(key, 0) + row["orders"]
    labels = dict(Product.Category.choices)
    values = [
        {"month": month, "category": str(labels.get(name, name)), "orders": count}
        for (month, name), count in sorted(counted.items())
    ]
    return (
        alt.Chart(alt.Data(values=values), title="Orders per category and month")
        .mark_rect()
        .encode(
            x=alt.X("utcyearmonth(month):O", title="Month"),
            y=alt.Y("category:N", title=None, sort=[str(label) for label in labels.values()]),
            color=alt.Color("orders:Q", title="Orders", scale=alt.Scale(scheme="oranges")),
            tooltip=[
                alt.Tooltip("utcyearmonth(month):O", title="Month"),
                alt.Tooltip("category:N", title="Category"),
                alt.Tooltip("orders:Q", title="Orders"),
            ],
        )
        .properties(width=WIDTH, height=200)
    )


@chart(models=[sales, Product])
def top_products() -> alt.Chart:
    """Top 10 products by revenue"""
    rows = sales.rows(by=["product"], order_by=["-revenue", "product"])[:10]
    products = Product.objects.in_bulk([row["product"] for row in rows])
    labels = dict(Product.Category.choices)
    values = [
        {
            "product": products[row["product"]].name,
            "category": str(labels.get(products[row["product"]].category, "")),
            "revenue": _money(row["revenue"]),
            "orders": row["orders"],
        }
        for row in rows
        if row["product"] in products
    ]
    return (
        alt.Chart(alt.Data(values=values), title="Top 10 products by revenue")
        .mark_bar()
        .encode(
            x=alt.X("revenue:Q", title="Revenue (EUR)"),
            y=alt.Y("product:N", title=None, sort="-x"),
            color=alt.Color(
                "category:N",
                title="Category",
                scale=alt.Scale(domain=[str(label) for label in labels.values()]),
            ),
            tooltip=[
                alt.Tooltip("product:N", title="Product"),
                alt.Tooltip("category:N", title="Category"),
                alt.Tooltip("revenue:Q", title="Revenue (EUR)", format=",.2f"),
                alt.Tooltip("orders:Q", title="Orders"),
            ],
        )
        .properties(width=WIDTH, height=280)
    )


@number(models=[sales], label="Revenue", unit="EUR")
def total_revenue() -> Decimal:
    """Revenue of all orders that were not cancelled"""
    (total,) = sales.rows(by=[])
    return Decimal(total["revenue"] or 0).quantize(CENT)


@number(models=[orders], label="Orders", unit="orders")
def orders_count() -> int:
    """Orders placed, cancelled ones included"""
    (total,) = orders.rows(by=[])
    return int(total["orders"])


@number(models=[sales], label="Average order value", unit="EUR")
def average_order_value() -> Decimal:
    """Average amount of the orders that were not cancelled"""
    (total,) = sales.rows(by=[])
    if not total["orders"]:
        return Decimal(0).quantize(CENT)
    return (Decimal(total["revenue"]) / total["orders"]).quantize(CENT)


@number(models=[sales], label="Revenue this month", unit="EUR")
def revenue_this_month() -> Trend:
    """Revenue of the month so far, against last month's, with the last twelve months"""
    current = Month.current(ZONE)
    rows = sales.rows(by=["month"], order_by=["month"])
    series = [(row["month"], Decimal(row["revenue"] or 0).quantize(CENT)) for row in rows]
    if not series or series[-1][0] != current:
        series.append((current, Decimal(0).quantize(CENT)))  # nothing sold yet this month
    return Trend.of(series[-12:], period="month", partial=True)
