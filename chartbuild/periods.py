"""Time buckets for charts, as native SQL: day, week, month, hour of day, weekday.

Django's ``TruncMonth`` and ``ExtractHour`` run a Python function per row on SQLite:
over a million rows that is seconds. These expressions compile to SQLite's own
``strftime()`` and ``date()`` and, on PostgreSQL, to ``date_trunc`` and ``extract``
(Django's, which are native there). Elsewhere they are Django's. Use them as Django's::

    from chartbuild.periods import Month

    Order.objects.annotate(month=Month("created_at")).values("month").annotate(n=Count("id"))

Buckets of a ``DateTimeField`` honour ``USE_TZ`` and the current time zone (or
``tzinfo=``), as Django's do. On SQLite, a zone with daylight saving time is converted
with its offsets from 1970 to twenty years from now, the newest first. ``Day``, ``Week``
(starting on Monday) and ``Month`` give a ``date``; ``HourOfDay`` 0 to 23; ``Weekday``
1 (Monday) to 7 (Sunday).

``Day.current()``, ``Week.current()`` and ``Month.current()`` give the bucket that is
still under way (in the current time zone, or ``tzinfo=``): a chart marks it as partial,
and a :class:`~chartbuild.Trend` says ``partial=True`` when its last point is that one.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any

from django.db.models import DateField, DateTimeField, IntegerField
from django.db.models.functions import (
    ExtractHour,
    ExtractIsoWeekDay,
    TruncDay,
    TruncMonth,
    TruncWeek,
)

__all__ = ["Day", "HourOfDay", "Month", "Week", "Weekday"]


class _SqliteLocal:
    """The field as local time on SQLite: ``(sql, params)`` of a text datetime or date."""

    lhs: Any  # these come from Django's Trunc* and Extract* classes
    get_tzname: Any

    def _local(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.lhs)
        field = self.lhs.output_field
        tzname = self.get_tzname() if isinstance(field, DateTimeField) else None
        if not tzname or tzname == "UTC":
            return sql, list(params)
        periods = _periods(tzname)
        if len(periods) == 1:
            return f"datetime({sql}, %s)", [*params, periods[0][1]]
        newest_first = periods[:0:-1]  # the oldest period is the ELSE
        case = (
            "CASE " + " ".join(f"WHEN {sql} >= %s THEN %s" for _ in newest_first) + " ELSE %s END"
        )
        case_params: list[Any] = []
        for start, offset in newest_first:
            case_params += [*params, start, offset]
        case_params.append(periods[0][1])
        return f"datetime({sql}, {case})", [*params, *case_params]


@functools.cache
def _periods(tzname: str) -> tuple[tuple[str, str], ...]:
    """``(UTC start, offset modifier)`` of each period of ``tzname`` with one UTC offset,
    oldest first, from 1970 to twenty years from now (the first stands for all before)."""
    zone = zoneinfo.ZoneInfo(tzname)
    end = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=366 * 20)

    def offset(moment: dt.datetime) -> dt.timedelta:
        return moment.replace(tzinfo=dt.UTC).astimezone(zone).utcoffset() or dt.timedelta(0)

    moment = dt.datetime(1970, 1, 1)
    periods = [(moment, offset(moment))]
    while moment < end:
        step = moment + dt.timedelta(days=7)
        if offset(step) != periods[-1][1]:
            low, high = moment, step  # the change is in (low, high]: find its minute
            while high - low > dt.timedelta(minutes=1):
                middle = low + (high - low) / 2
                if offset(middle) == periods[-1][1]:
                    low = middle
                else:
                    high = middle
            high = high.replace(second=0, microsecond=0)
            periods.append((high, offset(high)))
        moment = step
    return tuple(
        (start.strftime("%Y-%m-%d %H:%M:%S"), _modifier(delta)) for start, delta in periods
    )


def _modifier(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class _Current:
    """``current()``: the start of the bucket that holds today."""

    @staticmethod
    def _start(day: dt.date) -> dt.date:
        return day

    @classmethod
    def current(cls, tzinfo: dt.tzinfo | None = None) -> dt.date:
        """The bucket under way now, as the database names it (its first day)."""
        from django.conf import settings
        from django.utils import timezone

        if settings.USE_TZ:
            return cls._start(timezone.localdate(timezone=tzinfo))
        return cls._start(dt.datetime.now(tzinfo).date() if tzinfo else dt.date.today())


class Day(_Current, _SqliteLocal, TruncDay):  # type: ignore[misc]
    """The day, as a ``date``."""

    output_field = DateField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = self._local(compiler, connection)
        return f"date({sql})", params


class Week(_Current, _SqliteLocal, TruncWeek):  # type: ignore[misc]
    """The Monday that starts the (ISO) week, as a ``date``."""

    output_field = DateField()

    @staticmethod
    def _start(day: dt.date) -> dt.date:
        return day - dt.timedelta(days=day.weekday())

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = self._local(compiler, connection)
        return f"date({sql}, 'weekday 0', '-6 days')", params


class Month(_Current, _SqliteLocal, TruncMonth):  # type: ignore[misc]
    """The first day of the month, as a ``date``."""

    output_field = DateField()

    @staticmethod
    def _start(day: dt.date) -> dt.date:
        return day.replace(day=1)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = self._local(compiler, connection)
        return f"strftime('%%Y-%%m-01', {sql})", params


class HourOfDay(_SqliteLocal, ExtractHour):  # type: ignore[misc]
    """The hour of the day, 0 to 23."""

    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = self._local(compiler, connection)
        return f"CAST(strftime('%%H', {sql}) AS INTEGER)", params


class Weekday(_SqliteLocal, ExtractIsoWeekDay):  # type: ignore[misc]
    """The day of the week, 1 (Monday) to 7 (Sunday)."""

    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = self._local(compiler, connection)
        return f"((CAST(strftime('%%w', {sql}) AS INTEGER) + 6) %% 7 + 1)", params
