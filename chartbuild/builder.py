"""The actions of the task graph: export, build a chart or number, a dashboard, the manifest.

Each action is a plain module-level function taking plain values, so doit can run
it in this process or in a worker. Every file is written with
:func:`~chartbuild.files.write_if_changed`: atomically, and only when its content
changes. A chart whose function fails writes nothing, so its previous outputs stay
byte-identical.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import DatabaseError
from django.template import Context, Engine

from chartbuild import catalog, conf, lock, outputs, reads, tables
from chartbuild.exceptions import ChartbuildError, ChartError, ExportError
from chartbuild.exporter import Exporter
from chartbuild.files import remove_temporary, write_if_changed
from chartbuild.registry import Declaration

logger = logging.getLogger(__name__)

PACKAGE_STATIC = Path(__file__).parent / "static" / "chartbuild"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def export(models: list[str]) -> tuple[str, ...]:
    """Take the build lock for the rest of the run, then export new changes to stamps."""
    state_dir = conf.state_dir()
    lock.hold(state_dir, conf.lock_timeout())
    if lock.inherited_crash(state_dir):
        removed = remove_temporary([conf.output_dir(), state_dir], spare=["catalog.json"])
        if removed:
            logger.info("removed %d temporary files left by a killed build", len(removed))
    using = conf.database()
    try:
        result = Exporter(models, state_dir, using=using, keep_events=conf.keep_events()).run()
    except DatabaseError as exc:
        raise ExportError(
            f"cannot read changes from database {using!r}: {exc}. "
            "Check that the database is reachable and that `manage.py migrate` has been run "
            "(mqueue's events and chartbuild's change log are tables). Nothing was exported; "
            "the next build retries."
        ) from exc
    _warn_uncaptured(models, using)
    return result.changed


#: The catalog keys whose capture this process has checked already.
_capture_checked: set[tuple[str, int]] = set()


def _warn_uncaptured(models: list[str], using: str) -> None:
    """Warn of watched tables whose capture trigger is missing or outdated.

    Looked at once per process and version of the generators (the build's no-op cost
    stays a few queries); a failure to look is logged, it does not fail the export.
    """
    from chartbuild import capture

    key = catalog.cache_key()
    if key in _capture_checked:
        return
    _capture_checked.add(key)
    watched = tables.readers(models)
    try:
        status = capture.for_database(using).status(watched)
    except DatabaseError as exc:
        logger.warning("cannot check chartbuild's capture triggers: %s", exc)
        return
    for table, state in sorted(status.items()):
        if state in (capture.MISSING, capture.OUTDATED):
            logger.warning(
                "%s. Run `manage.py migrate`.", capture.problem(table, state, watched[table])
            )


def build(generator_name: str, name: str) -> None:
    """Build one chart or number of a generator; raise :class:`ChartError` if it fails."""
    generator = catalog.load().generator(generator_name)
    declaration = generator.get(name)
    where = f"{declaration.kind} {generator_name}.{name}"
    built_at = now()
    with reads.recording() as recorder:
        try:
            value = catalog.function(generator, name)()
        except ChartbuildError:
            raise
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc))
            raise ChartError(
                f"{where} (generator {generator_name}) failed: {type(exc).__name__}: {exc}"
                f"\n{detail}"
            ) from exc
        if declaration.kind == "number":
            content = number_json(where, declaration, value, built_at)
        else:
            spec = chart_spec(where, value)  # Altair may evaluate a lazy queryset here
    read = recorder.models()
    undeclared = reads.undeclared(read, declaration.models)
    if undeclared:
        text = reads.message(task_name(generator_name, name), undeclared)
        if conf.strict_reads():
            raise ChartError(f"{text} (CHARTBUILD_STRICT_READS is on)")
        logger.warning(text)
    out = conf.output_dir()
    if declaration.kind == "number":
        write_if_changed(out / outputs.of(generator_name, declaration)[0], content)
    else:
        spec_path, svg_path, html_path = (out / p for p in outputs.of(generator_name, declaration))
        svg = render_svg(where, spec)
        write_if_changed(spec_path, dumps(spec))
        write_if_changed(svg_path, svg)
        write_if_changed(html_path, chart_page(generator_name, declaration, spec))
    record = outputs.record(conf.state_dir(), generator_name, name)
    write_if_changed(record, json.dumps({"built_at": built_at, "reads": read}) + "\n")
    write_dashboard(generator)


def chart_spec(where: str, value: Any) -> dict[str, Any]:
    """The Vega-Lite spec of what a chart function returned (an Altair chart or a dict)."""
    if hasattr(value, "to_dict"):
        try:
            spec = value.to_dict()
        except Exception as exc:
            raise ChartError(f"{where} returned a chart that Altair cannot convert: {exc}") from exc
    elif isinstance(value, dict):
        spec = value
    else:
        raise ChartError(
            f"{where} returned {type(value).__name__}; return an Altair chart or a Vega-Lite dict"
        )
    try:
        return dict(json.loads(dumps(spec)))
    except (TypeError, ValueError) as exc:
        raise ChartError(f"{where}: its spec cannot be written as JSON: {exc}") from exc


def render_svg(where: str, spec: dict[str, Any]) -> str:
    import vl_convert

    try:
        return str(vl_convert.vegalite_to_svg(spec))
    except Exception as exc:
        raise ChartError(f"{where}: vl-convert cannot render its spec: {exc}") from exc


def warm_up() -> None:
    """Import Altair and start vl-convert's engine, so the first rebuild is as fast as the next."""
    import altair  # noqa: F401
    import vl_convert

    vl_convert.vegalite_to_svg({"mark": "point", "data": {"values": [{}]}})


def number_json(where: str, declaration: Declaration, value: Any, built_at: str) -> str:
    if isinstance(value, Decimal):
        value = float(value)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ChartError(
            f"{where} returned {type(value).__name__}; return an int, float or Decimal"
        )
    data = {
        "value": value,
        "label": declaration.label,
        "unit": declaration.unit,
        "built_at": built_at,
    }
    try:
        return dumps(data)
    except ValueError as exc:
        raise ChartError(f"{where} returned {value!r}, which JSON cannot hold") from exc


def dumps(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, default=_json_default, allow_nan=False) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_engine: Engine | None = None


def render(template: str, context: dict[str, Any]) -> str:
    global _engine
    if _engine is None:
        _engine = Engine(dirs=[str(Path(__file__).parent / "templates")], autoescape=True)
    return _engine.get_template(template).render(Context(context))


def chart_page(generator: str, declaration: Declaration, spec: dict[str, Any]) -> str:
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


def dashboard(generator_name: str) -> None:
    """Write ``<generator>/index.html`` with every built chart and number of the generator."""
    write_dashboard(catalog.load().generator(generator_name))


def write_dashboard(generator: catalog.Generator) -> None:
    generator_name = generator.name
    out = conf.output_dir()
    charts, numbers = [], []
    for declaration in generator.declarations:
        first = out / outputs.of(generator_name, declaration)[0]
        if not first.exists():
            continue
        data = json.loads(first.read_text())
        if declaration.kind == "number":
            numbers.append(
                {
                    "name": declaration.name,
                    "label": declaration.label,
                    "unit": data["unit"],
                    "display": _display(data["value"]),
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
            "generator": generator_name,
            "charts": charts,
            "numbers": numbers,
            "built_at": now(),
            "static": f"../{outputs.STATIC}",
        },
    )
    write_if_changed(out / outputs.dashboard(generator_name), page)


def _display(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def assets() -> None:
    """Write the shared scripts and style sheet, once per output directory."""
    import vl_convert

    static = conf.output_dir() / outputs.STATIC
    bundle = vl_convert.javascript_bundle()  # type: ignore[call-arg]  # snippet is optional
    write_if_changed(static / "vega.js", bundle)
    for name in outputs.PACKAGE_ASSETS:
        write_if_changed(static / name, (PACKAGE_STATIC / name).read_bytes())


def manifest() -> None:
    """Write ``manifest.json``: one entry per chart and number, with its task and outputs."""
    cat = catalog.load()
    out = conf.output_dir()
    state = conf.state_dir()
    entries = []
    for generator in cat.generators:
        for declaration in generator.declarations:
            paths = outputs.of(generator.name, declaration)
            try:
                record = json.loads(
                    outputs.record(state, generator.name, declaration.name).read_text()
                )
            except (FileNotFoundError, ValueError):
                record = {}
            entries.append(
                {
                    "task": task_name(generator.name, declaration.name),
                    "generator": generator.name,
                    "name": declaration.name,
                    "kind": declaration.kind,
                    "title": declaration.title,
                    "models": list(declaration.models),
                    "reads": record.get("reads"),
                    "outputs": [p for p in paths if (out / p).exists()],
                    "built_at": record.get("built_at"),
                }
            )
    write_if_changed(out / outputs.manifest(), dumps({"entries": entries}))


def task_name(generator: str, name: str) -> str:
    """The doit task that builds chart or number ``name`` of ``generator``."""
    return f"{generator}.{name}"
