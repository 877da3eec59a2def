"""A number with its direction: the value, the previous period's, and a short series.

A number function returns a plain value, or a :class:`Trend`::

    @number(models=[sales], label="Revenue this month", unit="EUR")
    def revenue_this_month() -> Trend:
        rows = sales.rows(by=["month"], order_by=["month"])
        return Trend.of([(r["month"], r["revenue"]) for r in rows][-12:], period="month",
                        partial=True)

The number's JSON then carries ``value``, ``previous``, ``delta`` (``value - previous``),
``pct`` (the change in per cent of ``|previous|``: ``null`` when the base is 0 or unknown,
never an infinity), ``period``, ``partial`` (the value's period is not over yet),
``higher_is_better`` (from :func:`~chartbuild.number`) and ``series`` (``[{"period",
"value"}]``, oldest first), and pages show the change with its direction and a sparkline.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Value = int | float | Decimal | None


@dataclass(frozen=True)
class Trend:
    """A number's value, the value it is compared with, and the series they end."""

    value: Value
    previous: Value = None
    #: ``(period, value)`` pairs or plain values, oldest first (the last is ``value``'s).
    series: tuple[Any, ...] = field(default=())
    #: What one step is ("month", "week", "day", or any word the pages show).
    period: str = ""
    #: Whether ``value``'s period is still under way (the month so far).
    partial: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "series", tuple(self.series))

    @classmethod
    def of(cls, series: Iterable[Any], *, period: str = "", partial: bool = False) -> Trend:
        """The last point of ``series`` compared with the one before it."""
        points = tuple(series)
        values = [point[1] if isinstance(point, tuple | list) else point for point in points]
        return cls(
            value=values[-1] if values else None,
            previous=values[-2] if len(values) > 1 else None,
            series=points,
            period=period,
            partial=partial,
        )

    def as_dict(self, higher_is_better: bool | None) -> dict[str, Any]:
        """The fields the number's JSON adds to ``value``."""
        value, previous = _plain(self.value), _plain(self.previous)
        delta = None if value is None or previous is None else value - previous
        pct = None
        if delta is not None and previous:
            pct = delta / abs(previous) * 100
        return {
            "value": value,
            "previous": previous,
            "delta": _tidy(delta),
            "pct": pct,
            "period": self.period,
            "partial": self.partial,
            "higher_is_better": higher_is_better,
            "series": [_point(point) for point in self.series],
        }


def _plain(value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"a trend holds numbers, not {type(value).__name__} ({value!r})")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise TypeError(f"a trend holds finite numbers, not {value!r}")
    return value


def _tidy(value: int | float | None) -> int | float | None:
    """A difference of decimals without float noise (0.1 - 0.3 -> -0.2)."""
    return round(value, 10) if isinstance(value, float) else value


def _point(point: Any) -> dict[str, Any]:
    if isinstance(point, tuple | list):
        label, value = point
    else:
        label, value = None, point
    if isinstance(label, dt.date | dt.datetime):
        label = label.isoformat()
    return {"period": None if label is None else str(label), "value": _plain(value)}
