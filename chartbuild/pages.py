"""The HTML pages of the outputs: one per chart, and a dashboard per generator.

Templates are Django templates, found as any app's are: a project overrides
``chartbuild/chart.html`` or ``chartbuild/dashboard.html`` in its own template
directories. A project whose ``TEMPLATES`` cannot find chartbuild's (no ``APP_DIRS``,
say) gets chartbuild's own, from a private engine.

A dashboard lists every chart and number of its generator that has been built: it is
written once per build, after them (see :mod:`chartbuild.actions`), and only when its
content changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.template import Context, Engine, TemplateDoesNotExist
from django.template.loader import get_template

from chartbuild import catalog, conf, outputs
from chartbuild.files import write_if_changed
from chartbuild.registry import Declaration

_engine: Engine | None = None


def render(template: str, context: dict[str, Any]) -> str:
    """``template`` rendered with ``context``: the project's copy if it has one."""
    try:
        return str(get_template(template).render(context))
    except TemplateDoesNotExist:
        global _engine
        if _engine is None:
            _engine = Engine(dirs=[str(Path(__file__).parent / "templates")], autoescape=True)
        return str(_engine.get_template(template).render(Context(context)))


def chart(generator: str, declaration: Declaration, spec: dict[str, Any]) -> str:
    """The page of one chart: the interactive view, its SVG without JavaScript."""
    return render(
        "chartbuild/chart.html",
        {
            "generator": generator,
            "declaration": declaration,
            "spec": spec,
            "spec_id": f"spec-{declaration.name}",
            "static": f"../{outputs.STATIC}",
        },
    )


def write_dashboard(generator: catalog.Generator) -> bool:
    """Write ``<generator>/index.html`` from the built outputs; return whether it changed."""
    out = conf.output_dir()
    charts, numbers = [], []
    newest = ""
    for declaration in generator.declarations:
        first = out / outputs.of(generator.name, declaration)[0]
        try:
            data = json.loads(first.read_text())
        except (FileNotFoundError, ValueError):
            continue
        newest = max(newest, outputs.read_record(generator.name, declaration.name).built_at)
        if declaration.kind == "number":
            numbers.append(
                {
                    "name": declaration.name,
                    "label": declaration.label,
                    "unit": data.get("unit", ""),
                    "display": display(data.get("value")),
                }
            )
        else:
            charts.append(
                {
                    "name": declaration.name,
                    "title": declaration.title,
                    "spec": data,
                    "spec_id": f"spec-{declaration.name}",
                }
            )
    page = render(
        "chartbuild/dashboard.html",
        {
            "generator": generator.name,
            "charts": charts,
            "numbers": numbers,
            "built_at": newest or "never",
            "static": f"../{outputs.STATIC}",
        },
    )
    return write_if_changed(out / outputs.dashboard(generator.name), page)


def display(value: Any) -> str:
    """A number as a dashboard shows it."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"
