"""A number with its trend: the JSON a build writes and what a card shows of it."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from chartbuild import Trend, number
from chartbuild.build.actions import number_json
from chartbuild.declare.registry import ATTRIBUTE
from chartbuild.exceptions import ChartError
from chartbuild.periods import Day, Month, Week
from chartbuild.publish import outputs, pages


def declared(higher_is_better: bool | None = True):
    @number(models=["shop.order"], label="Revenue", unit="EUR", higher_is_better=higher_is_better)
    def revenue() -> None: ...

    return getattr(revenue, ATTRIBUTE)


def written(value, higher_is_better: bool | None = True) -> dict:
    return json.loads(number_json("number shop.revenue", declared(higher_is_better), value, "T"))


def test_a_trend_carries_its_previous_value_change_and_series():
    months = [dt.date(2026, m, 1) for m in (9, 10, 11, 12)]
    amounts = [Decimal("80.00"), Decimal("100.00"), Decimal("120.50"), Decimal("90.25")]
    data = written(Trend.of(list(zip(months, amounts, strict=True)), period="month", partial=True))
    assert data["value"] == 90.25 and data["previous"] == 120.5
    assert data["delta"] == -30.25
    assert data["pct"] == pytest.approx(-25.103734, abs=1e-6)
    assert data["period"] == "month" and data["partial"] is True
    assert data["higher_is_better"] is True
    assert data["series"][0] == {"period": "2026-09-01", "value": 80}
    assert [p["value"] for p in data["series"]] == [80, 100, 120.5, 90.25]
    assert (data["label"], data["unit"], data["built_at"]) == ("Revenue", "EUR", "T")


def test_pct_is_null_from_a_zero_or_missing_base():
    assert written(Trend(5, previous=0))["pct"] is None
    assert written(Trend(5, previous=0))["delta"] == 5
    nothing_before = written(Trend.of([3]))
    assert nothing_before["previous"] is None and nothing_before["delta"] is None
    assert nothing_before["pct"] is None
    assert written(Trend(0, previous=-4))["pct"] == 100.0  # from -4 up to 0: |base| is 4


def test_a_plain_number_keeps_its_json():
    assert set(written(Decimal("3.5"))) == {"value", "label", "unit", "built_at"}


def test_a_trend_of_what_json_cannot_hold_fails_its_number():
    with pytest.raises(ChartError, match=r"number shop.revenue returned a Trend .*\('soon'\)"):
        written(Trend("soon", previous=1))
    with pytest.raises(ChartError, match="finite"):
        written(Trend.of([1.0, float("inf")]))


def test_a_card_shows_direction_and_tone_by_what_is_better():
    up = pages.trend(written(Trend.of([100, 125], period="week")))
    assert (up["direction"], up["tone"], up["arrow"]) == ("up", "good", "\u25b2")
    assert up["change"] == "+25.0 %" and up["against"] == "vs previous week"
    errors_up = pages.trend(written(Trend.of([100, 125]), higher_is_better=False))
    assert errors_up["tone"] == "bad" and errors_up["against"] == "vs previous period"
    neither = pages.trend(written(Trend.of([2, 1]), higher_is_better=None))
    assert (neither["direction"], neither["tone"]) == ("down", "neutral")
    flat = pages.trend(written(Trend.of([7, 7])))
    assert (flat["direction"], flat["tone"], flat["change"]) == ("flat", "neutral", "+0.0 %")
    from_zero = pages.trend(written(Trend.of([0, 1234])))
    assert from_zero["change"] == "+1,234"  # a per cent of nothing is not a number
    assert pages.trend(written(Trend.of([5])))["change"] == "no previous value"
    assert pages.trend(written(Trend.of([1, 2], partial=True, period="month")))["partial"] == (
        "month so far"
    )
    assert pages.trend(written(4)) is None


def test_the_sparkline_spans_its_box():
    assert pages.sparkline([10, None, 30, 20]) == "0.0,22.0 66.67,2.0 100.0,12.0"
    assert pages.sparkline([5]) == ""
    assert pages.sparkline([3, 3]) == "0.0,22.0 100.0,22.0"  # flat: along the bottom


def test_the_bucket_under_way(settings):
    settings.USE_TZ = True
    settings.TIME_ZONE = "UTC"
    today = dt.datetime.now(dt.UTC).date()
    assert Day.current() == today
    assert Month.current() == today.replace(day=1)
    assert Week.current().weekday() == 0 and 0 <= (today - Week.current()).days < 7
    far_east = dt.timezone(dt.timedelta(hours=14))
    assert Day.current(far_east) == dt.datetime.now(far_east).date()


@pytest.mark.django_db(transaction=True)
def test_the_demo_revenue_chart_marks_its_current_month_and_its_number_has_a_trend(build):
    from zoneinfo import ZoneInfo

    from django.conf import settings

    spec = json.loads((build.out / "shop" / "revenue_per_month.vl.json").read_text())
    (values,) = outputs.data_sets(spec)
    current = Month.current(ZoneInfo(settings.TIME_ZONE)).isoformat()
    assert [row["month"] for row in values if row["partial"]] == [current]
    assert values[-1]["dashed"] is True  # the line to it is dashed
    dashed = [layer for layer in spec["layer"] if layer["mark"].get("strokeDash")]
    assert dashed and dashed[0]["transform"] == [{"filter": "datum.dashed"}]
    number = json.loads((build.out / "shop" / "revenue_this_month.json").read_text())
    assert number["period"] == "month" and number["partial"] is True
    assert number["series"][-1]["period"] == current
    assert number["value"] == number["series"][-1]["value"] == 28.5  # three orders of 9.50
