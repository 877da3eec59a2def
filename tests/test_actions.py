import os

import pytest

from chartbuild import actions
from chartbuild.exceptions import ChartError
from chartbuild.registry import Declaration
from chartbuild.tasks import ContentChecker

NUMBER = Declaration(name="n", kind="number", title="N", models=("auth.user",), label="N")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_number_json_cannot_hold_is_a_chart_error(value):
    with pytest.raises(ChartError, match=r"users\.n returned .*, which JSON cannot hold"):
        actions.number_json("number users.n", NUMBER, value, "now")


@pytest.mark.parametrize("value", ["12", True, [1]])
def test_a_number_of_the_wrong_type_is_a_chart_error(value):
    with pytest.raises(ChartError, match="return an int, float or Decimal"):
        actions.number_json("number users.n", NUMBER, value, "now")


def test_a_chart_of_the_wrong_type_is_a_chart_error():
    with pytest.raises(ChartError, match="returned list; return an Altair chart or a Vega-Lite"):
        actions.chart_spec("chart users.c", [])


def test_a_spec_json_cannot_hold_is_a_chart_error():
    with pytest.raises(ChartError, match=r"users\.c: its spec cannot be written as JSON"):
        actions.chart_spec("chart users.c", {"data": {"values": [{"x": object()}]}})


def test_stamps_are_compared_by_content_even_within_one_mtime_tick(tmp_path):
    stamp = tmp_path / "auth.user.stamp"
    stamp.write_text("auth.user 5\n")
    checker = ContentChecker()
    state = checker.get_state(str(stamp), None)
    mtime = stamp.stat().st_mtime_ns
    stamp.write_text("auth.user 6\n")  # same size
    os.utime(stamp, ns=(mtime, mtime))  # and, as on a coarse filesystem, the same mtime
    assert checker.check_modified(str(stamp), stamp.stat(), state) is True
    seen = checker.get_state(str(stamp), state)
    assert checker.check_modified(str(stamp), stamp.stat(), seen) is False
