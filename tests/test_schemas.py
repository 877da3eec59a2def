"""Altair's table of schema classes, kept once made (chartbuild.build.schemas)."""

import json
import subprocess
import sys

import pytest
from altair.utils import schemapi

from chartbuild.build import schemas

CHARTS = """
import json

import altair as alt

rows = [
    {"month": f"2024-{m:02d}-01", "kind": k, "n": m * 3 % 7} for m in range(1, 13) for k in "ab"
]
base = alt.Chart(alt.Data(values=rows)).encode(
    x=alt.X("yearmonth(month):T", title="Month"),
    y="n:Q",
    tooltip=["kind:N", alt.Tooltip("n:Q", format=",.2f")],
)
pick = alt.selection_point(fields=["kind"], bind="legend")
charts = [
    alt.Chart(alt.Data(values=rows)).mark_bar().encode(x="kind:N", y="sum(n):Q"),
    alt.layer(
        base.mark_area(line=True, opacity=0.5).transform_filter("datum.n > 2"),
        base.mark_point(filled=True).encode(color="kind:N"),
    ).properties(title="Layers", width=400),
    base.mark_line()
    .encode(
        color=alt.Color("kind:N", legend=alt.Legend(orient="top")),
        opacity=alt.condition(pick, alt.value(1), alt.value(0.2)),
    )
    .add_params(pick),
    alt.Chart(alt.Data(values=rows)).mark_arc().encode(theta="n:Q", color="kind:N").facet("kind:N"),
    alt.hconcat(base.mark_rule(), base.mark_text(dx=3).encode(text="n:Q")),
]
SPECS = [c.to_dict() for c in charts]
"""


def specs() -> list:
    namespace: dict = {}
    exec(CHARTS, namespace)
    return namespace["SPECS"]


def test_charts_are_the_same_with_the_table_kept():
    script = f"{CHARTS}\nprint(json.dumps(SPECS))"
    fresh = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert schemas.install()
    assert json.loads(json.dumps(specs())) == json.loads(fresh.stdout)


def test_the_table_is_made_once_per_process():
    assert schemas.install()
    classes = list(schemapi.SchemaBase._default_wrapper_classes())
    first = schemapi._FromDict(iter(classes))
    assert schemapi._FromDict(iter(classes)).class_dict is first.class_dict
    assert schemas.install()  # a second install wraps nothing again
    assert schemapi._FromDict(iter(classes)).class_dict is first.class_dict


@pytest.mark.django_db(transaction=True)
def test_a_build_keeps_the_table_before_its_first_chart_function_runs(tmp_path):
    from tests.doit import Build, seed

    seed()
    build = Build(tmp_path, generators=["tests.generators.altair_table"])
    result = build.run(process=True)  # a process of its own: nothing installed before
    assert result.returncode == 0, result.stderr
    spec = json.loads((build.out / "altair_table" / "table.vl.json").read_text())
    assert spec["title"] == "chartbuild.build.schemas"
