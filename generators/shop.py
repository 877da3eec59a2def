"""Charts and numbers about the shop: they read ``shop.Order`` and ``shop.Product`` only.

Revenue counts every order that was not cancelled. The revenue per month and the orders
by status read rollups, which the database keeps as orders are written: a new order costs
what it changed, not a new pass over every order.
"""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import altair as alt
from django.conf import settings
from django.db.models import Avg, Count, Q, QuerySet, Sum

from chartbuild import chart, number
from chartbuild.periods import Month
from chartbuild.rollups import Rollup
from demo.shop.models import Order, Product

#: On the site: the dashboard's title, and who may see its charts (anyone who may view orders).
TITLE = "Shop"
PERMISSION = "shop.view_order"

WIDTH = 560
CENT = Decimal("0.01")


def _money(value: Decimal | float | None) -> float:
    """An amount rounded to cents (SQLite sums decimals as floats), for Vega-Lite."""
    return round(float(value or 0), 2)


def _sales() -> QuerySet[Order]:
    """Orders that count as revenue: all but the cancelled ones."""
    return Order.objects.exclude(status=Order.Status.CANCELLED)


#: Revenue and orders per month, cancelled orders left out.
revenue = Rollup(
    "shop_revenue",
    model=Order,
    filter=~Q(status=Order.Status.CANCELLED),
    by={"month": Month("created_at", tzinfo=ZoneInfo(settings.TIME_ZONE))},
    aggregates={"revenue": Sum("amount"), "orders": Count("id")},
)
#: Orders per status, cancelled ones included.
statuses = Rollup(
    "shop_statuses", model=Order, by={"status": "status"}, aggregates={"orders": Count("id")}
)


@chart(models=[revenue])
def revenue_per_month() -> alt.Chart:
    """Revenue per month"""
    rows = revenue.rows(order_by=["month"])
    values = [
        {
            "month": row["month"].isoformat(),
            "revenue": _money(row["revenue"]),
            "orders": row["orders"],
        }
        for row in rows
    ]
    return (
        alt.Chart(alt.Data(values=values), title="Revenue per month")
        .mark_area(line=True, point=True, opacity=0.5)
        .encode(
            x=alt.X("utcyearmonth(month):T", title="Month"),
            y=alt.Y("revenue:Q", title="Revenue (EUR)"),
            tooltip=[
                alt.Tooltip("utcyearmonth(month):T", title="Month"),
                alt.Tooltip("revenue:Q", title="Revenue (EUR)", format=",.2f"),
                alt.Tooltip("orders:Q", title="Orders"),
            ],
        )
        .properties(width=WIDTH, height=280)
    )


@chart(models=[statuses])
def orders_by_status() -> alt.Chart:
    """Orders by status"""
    rows = statuses.rows(order_by=["status"])
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


@chart(models=[Order, Product])
def orders_by_category() -> alt.Chart:
    """Orders per category and month"""
    rows = (
        Order.objects.annotate(month=Month("created_at"))
        .values("month", "product__category")
        .annotate(orders=Count("id"))
        .order_by("month", "product__category")
    )
    labels = dict(Product.Category.choices)
    values = [
        {
            "month": row["month"].isoformat(),
            "category": str(labels.get(row["product__category"], row["product__category"])),
            "orders": row["orders"],
        }
        for row in rows
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


@chart(models=[Order, Product])
def top_products() -> alt.Chart:
    """Top 10 products by revenue"""
    rows = (
        _sales()
        .values("product_id", "product__name", "product__category")
        .annotate(revenue=Sum("amount"), orders=Count("id"))
        .order_by("-revenue", "product_id")[:10]
    )
    labels = dict(Product.Category.choices)
    values = [
        {
            "product": row["product__name"],
            "category": str(labels.get(row["product__category"], row["product__category"])),
            "revenue": _money(row["revenue"]),
            "orders": row["orders"],
        }
        for row in rows
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


@number(models=[Order], label="Revenue", unit="EUR")
def total_revenue() -> Decimal:
    """Revenue of all orders that were not cancelled"""
    revenue = _sales().aggregate(revenue=Sum("amount"))["revenue"]
    return Decimal(revenue or 0).quantize(CENT)


@number(models=[Order], label="Orders", unit="orders")
def orders_count() -> int:
    """Orders placed, cancelled ones included"""
    return Order.objects.count()


@number(models=[Order], label="Average order value", unit="EUR")
def average_order_value() -> Decimal:
    """Average amount of the orders that were not cancelled"""
    average = _sales().aggregate(average=Avg("amount"))["average"]
    return Decimal(average or 0).quantize(CENT)
