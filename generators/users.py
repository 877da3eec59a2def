"""Charts and numbers about user accounts: they read ``auth.User`` only.

Each says which of its fields it reads (``columns=``): a sign-in, which writes
``last_login`` alone, rebuilds none of them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import altair as alt
from django.contrib.auth import get_user_model
from django.db.models import Case, CharField, Count, Max, Value, When

from chartbuild import chart, number
from chartbuild.periods import HourOfDay, Month, Weekday

User = get_user_model()

#: On the site: the dashboard's title (its charts take the default permission: staff).
TITLE = "Users"

WIDTH = 560
#: What most of them read of a user: when it joined.
JOINED = {User: ["date_joined"]}
#: ``Weekday`` numbers the days from 1 (Monday) to 7 (Sunday).
WEEKDAY_ORDER = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _signups_by_month() -> list[dict[str, Any]]:
    rows = (
        User.objects.annotate(month=Month("date_joined"))
        .values("month")
        .annotate(users=Count("id"))
        .order_by("month")
    )
    return [{"month": row["month"].isoformat(), "users": row["users"]} for row in rows]


@chart(models=[User], columns=JOINED)
def signups_per_month() -> alt.Chart:
    """Sign-ups per month"""
    return (
        alt.Chart(alt.Data(values=_signups_by_month()), title="Sign-ups per month")
        .mark_bar()
        .encode(
            x=alt.X("utcyearmonth(month):T", title="Month"),
            y=alt.Y("users:Q", title="New users"),
            tooltip=[
                alt.Tooltip("utcyearmonth(month):T", title="Month"),
                alt.Tooltip("users:Q", title="New users"),
            ],
        )
        .properties(width=WIDTH, height=280)
    )


@chart(models=[User], columns=JOINED)
def users_over_time() -> alt.Chart:
    """Registered users over time"""
    # The database counts sign-ups per month; Vega-Lite adds up the running total.
    return (
        alt.Chart(alt.Data(values=_signups_by_month()), title="Registered users over time")
        .transform_window(total="sum(users)", sort=[alt.SortField("month")], frame=[None, 0])
        .mark_area(line=True, opacity=0.6)
        .encode(
            x=alt.X("utcyearmonth(month):T", title="Month"),
            y=alt.Y("total:Q", title="Users"),
            tooltip=[
                alt.Tooltip("utcyearmonth(month):T", title="Month"),
                alt.Tooltip("total:Q", title="Users"),
            ],
        )
        .properties(width=WIDTH, height=280)
    )


@chart(models=[User], columns=JOINED)
def signup_hours() -> alt.Chart:
    """When people sign up: weekday by hour (UTC)"""
    rows = (
        User.objects.annotate(weekday=Weekday("date_joined"), hour=HourOfDay("date_joined"))
        .values("weekday", "hour")
        .annotate(users=Count("id"))
        .order_by("weekday", "hour")
    )
    values = [
        {"weekday": WEEKDAY_ORDER[row["weekday"] - 1], "hour": row["hour"], "users": row["users"]}
        for row in rows
    ]
    return (
        alt.Chart(alt.Data(values=values), title="When people sign up: weekday by hour (UTC)")
        .mark_rect()
        .encode(
            x=alt.X(
                "hour:O",
                title="Hour of day",
                axis=alt.Axis(values=list(range(0, 24, 3)), labelAngle=0),
            ),
            y=alt.Y("weekday:O", title=None, sort=WEEKDAY_ORDER),
            color=alt.Color("users:Q", title="Sign-ups", scale=alt.Scale(scheme="blues")),
            tooltip=[
                alt.Tooltip("weekday:O", title="Weekday"),
                alt.Tooltip("hour:O", title="Hour"),
                alt.Tooltip("users:Q", title="Sign-ups"),
            ],
        )
        .properties(width=WIDTH, height=220)
    )


@chart(models=[User], columns={User: ["is_staff", "is_active"]})
def account_status() -> alt.Chart:
    """Accounts by status"""
    group = Case(
        When(is_staff=True, then=Value("staff")),
        When(is_active=True, then=Value("active")),
        default=Value("inactive"),
        output_field=CharField(),
    )
    rows = (
        User.objects.annotate(status=group)
        .values("status")
        .annotate(users=Count("id"))
        .order_by("status")
    )
    values = [{"status": row["status"], "users": row["users"]} for row in rows]
    return (
        alt.Chart(alt.Data(values=values), title="Accounts by status")
        .mark_arc(innerRadius=60)
        .encode(
            theta=alt.Theta("users:Q", stack=True),
            color=alt.Color(
                "status:N",
                title="Status",
                scale=alt.Scale(domain=["active", "inactive", "staff"]),
            ),
            tooltip=[
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("users:Q", title="Accounts"),
            ],
        )
        .properties(width=WIDTH, height=280)
    )


@number(models=[User], label="Users", unit="users", columns={User: []})
def total_users() -> int:
    """Registered users"""
    return User.objects.count()


@number(models=[User], label="New users in the last 30 days", unit="users", columns=JOINED)
def new_users_30_days() -> int:
    """Users who joined in the 30 days up to the latest sign-up.

    The window ends at the newest ``date_joined`` rather than at the current time, so the
    number only changes when users change, as chartbuild assumes.
    """
    latest = User.objects.aggregate(latest=Max("date_joined"))["latest"]
    if latest is None:
        return 0
    return User.objects.filter(date_joined__gt=latest - timedelta(days=30)).count()
