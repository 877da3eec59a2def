"""The static HTML pages of the outputs: one per chart, and a dashboard per generator.

They work offline from ``file://`` (each chart's spec is inline, the scripts are in the
output directory's ``static`` folder) for sites that publish the output directory as it
is; the Django site has pages of its own (:mod:`chartbuild.site.views`).

Templates are Django templates, found as any app's are: a project overrides
``chartbuild/chart.html`` or ``chartbuild/dashboard.html`` in its own template
directories. A project whose ``TEMPLATES`` cannot find chartbuild's (no ``APP_DIRS``,
say) gets chartbuild's own, from a private engine.

A generator's pages are written by its ``gen:`` task, once per build, after its charts:
the pages of the charts built in this build, and its dashboard, each only when its
content changed. The task depends on the template files (:func:`sources`) and on
chartbuild's version; when either changed since a generator's pages were last written
(:func:`key`), every page of the generator is written again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.template import Context, Engine, TemplateDoesNotExist
from django.template import Template as EngineTemplate
from django.template.loader import get_template

from chartbuild import conf
from chartbuild.declare import catalog
from chartbuild.declare.registry import Declaration
from chartbuild.files import write_if_changed
from chartbuild.publish import outputs

#: chartbuild's own templates.
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CHART = "chartbuild/chart.html"
DASHBOARD = "chartbuild/dashboard.html"

_engine: Engine | None = None


def _private() -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine(dirs=[str(TEMPLATES)], autoescape=True)
    return _engine


def _template(name: str) -> EngineTemplate:
    """The compiled template ``name``: the project's copy if it has one."""
    try:
        return get_template(name).template  # type: ignore[attr-defined,no-any-return]
    except TemplateDoesNotExist:
        return _private().get_template(name)


def render(name: str, context: dict[str, Any]) -> str:
    """Template ``name`` rendered with ``context``."""
    return str(_template(name).render(Context(context, autoescape=True)))


def sources() -> list[str]:
    """The template files the pages are made of (what the ``gen:`` tasks depend on).

    The two page templates as Django's loaders would find them (the directories of the
    ``DjangoTemplates`` backends, then the apps' ``templates`` folders, then chartbuild's
    own), and what they extend or include by a constant name. Found without starting a
    template engine (which would import every app's template tags): the task graph of a
    build with nothing to do stays cheap.
    """
    folders = _template_folders()
    found: list[str] = []
    for name in (CHART, DASHBOARD):
        _collect(name, folders, found, [])
    return found


def watched() -> list[str]:
    """The templates' files and the folders where a template could be added that would be
    found before one of them (what a build's plan checks: :mod:`chartbuild.build.plan`)."""
    folders = _template_folders()
    found: list[str] = []
    names: list[str] = []
    for name in (CHART, DASHBOARD):
        _collect(name, folders, found, names)
    places = {str((folder / name).parent) for folder in folders for name in names}
    return [*found, *sorted(places)]


#: ``{% extends "name" %}`` and ``{% include "name" %}`` with a constant name.
_REFERENCE = re.compile(r"""{%\s*(?:extends|include)\s+(["'])([^"']+)\1""")


def _template_folders() -> list[Path]:
    folders: list[Path] = []
    for backend in settings.TEMPLATES:
        if backend.get("BACKEND") != "django.template.backends.django.DjangoTemplates":
            continue
        loaders = str(backend.get("OPTIONS", {}).get("loaders", ""))
        folders += [Path(folder) for folder in backend.get("DIRS", [])]
        if backend.get("APP_DIRS") or "app_directories" in loaders:
            folders += [Path(config.path) / "templates" for config in apps.get_app_configs()]
    folders.append(TEMPLATES)  # the private engine's
    return folders


def _collect(name: str, folders: list[Path], found: list[str], names: list[str]) -> None:
    names.append(name)
    for folder in folders:
        path = folder / name
        if path.is_file():
            break
    else:
        return
    if str(path) in found:
        return
    found.append(str(path))
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return
    for _, referenced in _REFERENCE.findall(text):
        _collect(referenced, folders, found, names)


def key() -> str:
    """Changes when the templates' files or chartbuild's version change."""
    parts = [f"chartbuild {version('chartbuild')}"]
    for path in sources():
        parts.append(f"{path} {hashlib.sha256(Path(path).read_bytes()).hexdigest()}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _key_path(generator: str) -> Path:
    return conf.state_dir() / "pages" / f"{generator}.key"


def chart(generator: str, declaration: Declaration, spec: dict[str, Any]) -> str:
    """The page of one chart: the interactive view, its SVG without JavaScript."""
    return render(
        CHART,
        {
            "generator": generator,
            "declaration": declaration,
            "spec": spec,
            "spec_id": f"spec-{declaration.name}",
            "static": f"../{outputs.STATIC}",
        },
    )


def write(generator: catalog.Generator, built: Iterable[str]) -> list[str]:
    """Write the pages of ``generator``: those of the charts ``built`` and those missing or
    older than their spec, or all of them when the templates or chartbuild changed since
    they were written; then its dashboard.

    Returns the names of the charts whose page was written.
    """
    current = key()
    key_file = _key_path(generator.name)
    try:
        every = key_file.read_text() != current
    except OSError:
        every = True
    wanted = set(built)
    out = conf.output_dir()
    written = []
    for declaration in generator.declarations:
        if declaration.kind != "chart":
            continue
        spec_path = out / outputs.paths(generator.name, declaration)[0]
        page = out / outputs.page(generator.name, declaration)
        if not (every or declaration.name in wanted or _behind(page, spec_path)):
            continue
        try:
            spec = json.loads(spec_path.read_text())
        except (FileNotFoundError, ValueError):
            continue  # never built: no page
        write_if_changed(page, chart(generator.name, declaration, spec))
        written.append(declaration.name)
    write_dashboard(generator)
    if every:
        write_if_changed(key_file, current)
    return written


def _behind(page: Path, spec: Path) -> bool:
    """Whether ``page`` is missing (a ``doit clean``, say) or older than its chart's spec."""
    try:
        return page.stat().st_mtime_ns < spec.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def write_dashboard(generator: catalog.Generator) -> bool:
    """Write ``<generator>/index.html`` from the built outputs; return whether it changed."""
    out = conf.output_dir()
    charts, numbers = [], []
    newest = ""
    for declaration in generator.declarations:
        first = out / outputs.paths(generator.name, declaration)[0]
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
                    "raw_value": "" if data.get("value") is None else json.dumps(data["value"]),
                    "trend": trend(data),
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
        DASHBOARD,
        {
            "generator": generator.name,
            "title": generator.title or generator.name,
            "charts": charts,
            "numbers": numbers,
            "built_at": newest or "never",
            "static": f"../{outputs.STATIC}",
        },
    )
    return write_if_changed(out / outputs.dashboard(generator.name), page)


def trend(data: dict[str, Any]) -> dict[str, Any] | None:
    """How a number card shows a number's change (None for a number without a trend).

    ``direction`` up, down or flat; ``tone`` good, bad or neutral (``higher_is_better``);
    ``change`` the change in per cent, or in the number's own terms from a zero base
    (whose per cent is not a number); ``against`` what it is compared with; ``points``
    the sparkline's polyline in a 100 x 24 box.
    """
    if "series" not in data or "previous" not in data:
        return None
    delta, pct, better = data.get("delta"), data.get("pct"), data.get("higher_is_better")
    direction = "flat" if not delta else ("up" if delta > 0 else "down")
    tone = "neutral"
    if direction != "flat" and better is not None:
        tone = "good" if (direction == "up") == bool(better) else "bad"
    if delta is None:
        change = "no previous value"
    elif pct is not None:
        change = f"{pct:+,.1f} %"
    else:
        change = ("+" if delta > 0 else "") + display(delta)
    period = data.get("period") or "period"
    points = sparkline([p.get("value") for p in data.get("series") or []])
    return {
        "direction": direction,
        "arrow": {"up": "\u25b2", "down": "\u25bc", "flat": "\u25b6"}[direction],
        "tone": tone,
        "change": change,
        "against": f"vs previous {period}",
        "partial": f"{period} so far" if data.get("partial") else "",
        "points": points,
    }


def sparkline(values: list[Any]) -> str:
    """The polyline points of ``values`` in a 100 x 24 box (None values skipped)."""
    known = [(i, float(v)) for i, v in enumerate(values) if isinstance(v, int | float)]
    if len(known) < 2:
        return ""
    low, high = min(v for _, v in known), max(v for _, v in known)
    span, steps = (high - low) or 1.0, max(1, len(values) - 1)
    coords = [(round(i * 100 / steps, 2), round(22 - (v - low) * 20 / span, 2)) for i, v in known]
    return " ".join(f"{x},{y}" for x, y in coords)


def display(value: Any) -> str:
    """A number as a page shows it before its script formats it for the reader.

    Whole numbers with thousands separators (``1,234``), others with two decimals
    (``1,879,904.28``).
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return str(value)
    try:
        whole = value == int(value)
    except (ValueError, OverflowError):  # NaN, infinity
        return str(value)
    return f"{int(value):,}" if whole else f"{value:,.2f}"
