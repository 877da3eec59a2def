"""The actions of the task graph: what doit runs for each task.

Functions of the build's :class:`~chartbuild.build.session.Session` and plain values, run
in doit's main thread or (in a parallel build) in its worker threads:

- :func:`export` takes the build lock for the rest of the run and turns new changes into
  stamps (:mod:`chartbuild.export.exporter`);
- :func:`build_item` makes one chart or number: runs its function, checks what its queries
  read, converts and renders the result, and replaces its outputs as a set
  (:func:`chartbuild.publish.outputs.replace_set`): a failure leaves the previous outputs in place;
- :func:`dashboard` and :func:`manifest` write a generator's page and ``manifest.json``
  once per build, after the charts they list;
- :func:`finish` (the export task's teardown, run at the very end) writes the dashboards
  and the manifest that their tasks could not (doit does not run a task after a failed
  dependency): a failing chart never freezes the rest of its dashboard.

A chart function that raises anything at all (``SystemExit`` and ``KeyboardInterrupt``
included, unless the user asked to stop) fails its own task with a message naming it.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import logging
import sys
import threading
import time
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from doit.runner import MThreadRunner

from chartbuild import conf, names
from chartbuild.build import handover, hashes, interrupts, plan, reads, render, schemas, why
from chartbuild.build.session import Session
from chartbuild.declare import catalog, tables
from chartbuild.declare.registry import Declaration
from chartbuild.declare.trend import Trend
from chartbuild.exceptions import ChartbuildError, ChartError, ExportError
from chartbuild.export import exporter
from chartbuild.export.exporter import Exporter
from chartbuild.files import remove_temporary
from chartbuild.publish import assets, outputs, pages, storage
from chartbuild.publish import manifest as manifest_file
from chartbuild.rollups import rollup

logger = logging.getLogger(__name__)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# -- export -----------------------------------------------------------------------------


def export(session: Session, models: list[str]) -> tuple[str, ...]:
    """Take the build locks (until the build ends), then export new changes to stamps
    (a plain build has done both as its graph was declared: :func:`plan_build`)."""
    session.check_process()
    if session.changed is None and session.export_error is None:
        try:
            _lock(session)
            _export(session, models)
        except ChartbuildError as exc:
            session.export_error = exc
    if session.export_error is not None:
        raise session.export_error
    changed = session.changed or ()
    if changed and threading.current_thread() is not threading.main_thread():
        render.start_workers()  # charts will render in worker processes: start them now
    return changed


def plan_build(session: Session) -> None:
    """Make the plan of a plain build as its graph is declared (see
    :mod:`chartbuild.build.plan`): take the locks, take the last plain build's record
    (removing it), export, and decide which tasks the graph declares."""
    if session.planned:
        return
    session.planned = True
    session.check_process()
    if session.state_db is None:  # doit keeps its state elsewhere: no record of it here
        session.due = None
        return
    try:
        _lock(session)
    except ChartbuildError as exc:  # said by the export task, once
        session.export_error, session.due = exc, frozenset()
        return
    state_dir = session.state_dir
    record = plan.load(state_dir)
    plan.forget(state_dir)
    if record is not None and record.holds():
        session.record = record
        session.sources = dict(record.sources)
    else:
        if record is not None:
            logger.debug("checking every task: changed since the last build: %s", record.changed())
        session.sources = {p: plan.signature(p) for p in plan.sources(session.catalog, state_dir)}
    try:
        if session.one_off:
            _export(session, session.models())
        else:  # a long-lived process's own thread keeps no connection between builds
            _in_a_thread_of_its_own(_export, session, session.models())
    except ChartbuildError as exc:
        session.export_error, session.due = exc, frozenset()
        return
    if session.record is None or session.note:
        session.due = None  # every task is checked
        return
    failed = session.record.failed
    due = (
        plan.wanted(session.catalog, session.changed or (), failed)
        if (session.changed or failed)
        else frozenset()
    )
    session.due = (due | {"manifest"}) if session.manifest_due else due


def _in_a_thread_of_its_own(func: Any, *args: Any) -> None:
    """``func(*args)`` in a thread that closes its database connections as it ends."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            func(*args)
        except BaseException as exc:
            raised.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="chartbuild-export", daemon=True)
    thread.start()
    thread.join()
    if raised:
        raise raised[0]


def _lock(session: Session) -> None:
    if session.lock(conf.lock_timeout()) and session.one_off:
        # held until the process ends: after doit has saved its state
        atexit.register(session.release)


def _export(session: Session, models: list[str]) -> None:
    state_dir = session.state_dir
    if session.reset:
        exporter.forget(state_dir)  # every stamp changes: everything is rebuilt
    else:
        session.note = _adopt(session)
        if session.note and session.one_off:
            logger.info("%s", session.note)
    session.manifest_due = manifest_file.is_due() or storage.pending()
    if session.file_lock is not None and session.file_lock.inherited_crash:
        removed = remove_temporary([session.output_dir, state_dir], spare=["catalog.json"])
        if removed:
            logger.info("removed %d temporary files left by a killed build", len(removed))
    using = conf.database()
    try:
        result = Exporter(models, state_dir, using=using, keep_events=conf.keep_events()).run()
    except OSError as exc:
        raise ExportError(
            f"cannot write the build state in {state_dir}: {outputs.output_error(exc)}"
        ) from exc
    except DatabaseError as exc:
        raise ExportError(
            f"cannot read changes from database {using!r}: {exc}. "
            "Check that the database is reachable and that `manage.py migrate` has been run "
            "(mqueue's events and chartbuild's change log are tables). Nothing was exported; "
            "the next build retries."
        ) from exc
    session.exported = result.read
    session.changed = result.changed
    _warn_uncaptured(session, models, using)


def _adopt(session: Session) -> str:
    """Take over the build state another builder saved, if this state directory does not
    hold it yet, and record its charts as built in doit's state; say so ("" if there was
    nothing to take over)."""
    if session.state_db is None:
        return ""  # doit keeps its state in a backend of its own: build as it says
    try:
        found = handover.adopt(session.hashes)
    except handover.HalfAdopted as exc:
        exporter.forget(session.state_dir)  # trust none of it: rebuild everything
        return f"could not take over {exc}: rebuilding everything"
    except Exception as exc:  # the database or the storage is out of reach: next time
        return f"could not take over the saved build state now ({exc})"
    if found is None:
        return ""
    try:
        session.state_db.record_built(_built_states(session, found.built))
    except Exception as exc:
        exporter.forget(session.state_dir)
        return f"could not record the charts taken over ({exc}): rebuilding everything"
    session.adopted = found  # done once doit has saved its state (see finish)
    return found.describe()


def _built_states(session: Session, tasks: list[str]) -> dict[str, dict[str, Any]]:
    """What doit's ``reset-dep`` stores of ``tasks``: each as built from its ``file_dep``
    as they are now, so that this build runs it only if one of them changes."""
    check = hashes.checker(session.hashes)()
    states: dict[str, dict[str, Any]] = {}
    for task in tasks:
        deps = session.file_deps_of(task)
        if deps is None:
            continue  # not in this graph: it is built if it comes back
        state: dict[str, Any] = {"_values_:": {}, "checker:": type(check).__name__}
        for dep in deps:
            found = check.get_state(dep, None)
            if found is not None:
                state[dep] = found
        state["deps:"] = tuple(deps)
        states[task] = state
    return states


#: The catalog keys whose capture this process has checked already.
_capture_checked: set[tuple[str, int]] = set()


def _warn_uncaptured(session: Session, models: list[str], using: str) -> None:
    """Warn of watched tables whose capture trigger is missing or outdated.

    Looked at once per process and version of the generators (the build's no-op cost
    stays a few queries); a failure to look is logged, it does not fail the export.
    """
    from chartbuild.capture import triggers as capture

    key = catalog.cache_key()  # process-wide: once per version of the generators
    if key in _capture_checked:
        return
    _capture_checked.add(key)
    watched = tables.readers(models)
    try:
        status = capture.for_database(using).status(watched, session.watched_columns())
    except DatabaseError as exc:
        logger.warning("cannot check chartbuild's capture triggers: %s", exc)
        return
    for table, state in sorted(status.items()):
        if state in (capture.MISSING, capture.OUTDATED):
            logger.warning(
                "%s. Run `manage.py migrate`.", capture.problem(table, state, watched[table])
            )


# -- one chart or number ----------------------------------------------------------------


def build_item(session: Session, generator_name: str, name: str) -> None:
    """Build one chart or number; raise :class:`ChartError` if it fails."""
    session.check_process()
    generator = session.catalog.generator(generator_name)
    declaration = generator.get(name)
    if declaration.kind == "chart" and threading.current_thread() is not threading.main_thread():
        render.start_workers()  # they start while the generator is imported and queried
    if session.touch(generator_name):
        manifest_file.mark_due()
    previous = outputs.read_record(generator_name, name)
    source, stamps = _inputs(session, generator, declaration)
    basis = why.basis(source, stamps)
    reasons = why.reasons(
        previous.basis,
        basis,
        built_before=bool(previous.built_at),
        failed_before=previous.error,
        source_path=str(generator.path or generator.module),
        changes=session.changes(),
        rollups=_rollups_by_model(declaration),
    )
    task = names.task_name(generator_name, name)
    started = time.perf_counter()
    try:
        # Altair checks a spec against Vega-Lite's schema (half of a chart's time): only
        # when its code may have changed its shape, not when only its data did
        files, read = make(generator, declaration, validate=_code_may_differ(reasons))
        outputs.replace_set(files)
    except ChartbuildError as exc:
        if interrupts.requested():
            raise  # stopped, not failed: its record and outputs stay as they were
        session.failed = True
        failed_at = now()
        failed = dataclasses.replace(
            previous,
            error=str(exc),
            failed_at=failed_at,
            failing_since=previous.failing_since if previous.error else failed_at,
        )
        with contextlib.suppress(OSError):  # the failure itself is what must be told
            outputs.write_record(generator_name, name, failed)
        why.record(session.state_dir, task, failed_at, "failed", reasons)
        raise
    data_sets = sum(1 for path, content in files.items() if path.suffix == ".csv" and content)
    out = conf.output_dir()
    for stale in outputs.extra_csvs(generator_name, name, previous.data_sets)[
        max(0, data_sets - 1) :
    ]:
        (out / stale).unlink(missing_ok=True)
    record = outputs.Record(
        built_at=now(),
        reads=read,
        data_sets=data_sets,
        inputs=handover.inputs(generator, declaration, _by_file(stamps), session.hashes),
        seconds=round(time.perf_counter() - started, 4),
        basis=basis,
        why=tuple(reasons),
    )
    try:
        outputs.write_record(generator_name, name, record)
    except OSError as exc:
        raise outputs.output_error(exc) from exc
    session.note_made(generator_name, name, record.seconds)
    why.record(session.state_dir, task, record.built_at, "built", reasons)


def _inputs(
    session: Session, generator: catalog.Generator, declaration: Declaration
) -> tuple[str, dict[str, str]]:
    """Its generator's source digest, and its models' stamps (``{model: stamp}``)."""
    stamps = {}
    for model in declaration.models:
        with contextlib.suppress(OSError):
            stamps[model] = exporter.stamp_path(session.state_dir, model).read_text()
    source = session.hashes.md5(str(generator.path)) if generator.path is not None else ""
    return source, stamps


def _by_file(stamps: dict[str, str]) -> dict[str, str]:
    return {exporter.stamp_path(Path(), model).name: text for model, text in stamps.items()}


def _rollups_by_model(declaration: Declaration) -> dict[str, list[str]]:
    """``{base model: the rollups of it that the chart reads}``."""
    known = {r.name: r for r in rollup.declared()}  # its generator, imported, made them
    found: dict[str, list[str]] = {}
    for name in declaration.rollups:
        if name in known:
            found.setdefault(known[name].base_label, []).append(name)
    return found


def _code_may_differ(reasons: list[dict[str, Any]]) -> bool:
    """Whether a chart built for ``reasons`` may take a new shape (not only new data)."""
    return any(reason.get("kind") != "changed" for reason in reasons)


def make(
    generator: catalog.Generator, declaration: Declaration, *, validate: bool = True
) -> tuple[dict[Path, str | bytes], tuple[str, ...]]:
    """The outputs of one chart or number, and the models its queries read."""
    where = f"{declaration.kind} {generator.name}.{declaration.name}"
    if declaration.kind == "chart":
        schemas.install()  # Altair's channels, four times faster
    with reads.recording() as recorder:
        value = call(where, catalog.function(generator, declaration.name))
        if declaration.kind == "number":
            content = number_json(where, declaration, value, now())
        else:
            spec = chart_spec(where, value, validate=validate)  # a lazy queryset runs here
    read = tuple(recorder.models())
    task = names.task_name(generator.name, declaration.name)
    undeclared = reads.undeclared(read, declaration.models)
    problems = [reads.message(task, undeclared)] if undeclared else []
    problems += [
        reads.columns_message(task, model, fields)
        for model, fields in reads.undeclared_columns(recorder, declaration.columns).items()
    ]
    for text in problems:
        if conf.strict_reads():
            raise ChartError(f"{text} (CHARTBUILD_STRICT_READS is on)")
        logger.warning(text)
    out = conf.output_dir()
    paths = [out / p for p in outputs.paths(generator.name, declaration)]
    if declaration.kind == "number":
        return {paths[0]: content}, read
    try:
        svg, png = render.images(spec)
    except Exception as exc:
        raise ChartError(f"{where}: vl-convert cannot render its spec: {exc}") from exc
    files: dict[Path, str | bytes] = dict(zip(paths, [dumps(spec), svg, png, ""], strict=True))
    data = outputs.data_sets(spec)
    csvs = [paths[3]] + [
        out / p for p in outputs.extra_csvs(generator.name, declaration.name, len(data))
    ]
    for path, rows in zip(csvs, data, strict=False):
        files[path] = outputs.csv_text(rows)
    return files, read


def call(where: str, function: Any) -> Any:
    """Run a chart or number function: anything it raises becomes a :class:`ChartError`."""
    try:
        return function()
    except ChartbuildError:
        raise
    except KeyboardInterrupt:
        if interrupts.requested():
            raise  # the user stops the build
        raise ChartError(f"{where} raised KeyboardInterrupt") from None
    except SystemExit as exc:
        raise ChartError(
            f"{where} called sys.exit({exc.code!r}): a chart function must return its chart"
        ) from None
    except BaseException as exc:
        if interrupts.requested():  # its query was cancelled: the build is stopping
            raise ChartError(f"{where} was interrupted") from None
        lost = _lost_connection(exc)
        if lost:  # the server or the network, not the chart's code: no traceback
            raise ChartError(f"{where} lost its database connection: {lost}") from None
        detail = "".join(traceback.format_exception(exc))
        raise ChartError(f"{where} failed: {type(exc).__name__}: {exc}\n{detail}") from exc


def _lost_connection(exc: BaseException) -> str:
    """If ``exc`` is a database error that left a connection of this thread unusable (the
    server ended its session, the network failed), its cause in one line, having closed
    that connection so that the thread's next query connects afresh; else ""."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return ""  # a chart's own query that is wrong is told with its traceback
    lost = False
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or connection.in_atomic_block:
            continue
        try:
            usable = connection.is_usable()
        except Exception:
            usable = False
        if not usable:
            lost = True
            with contextlib.suppress(Exception):
                connection.close()
    if not lost:
        return ""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def chart_spec(where: str, value: Any, *, validate: bool = True) -> dict[str, Any]:
    """The Vega-Lite spec of what a chart function returned (an Altair chart or a dict);
    ``validate``: Altair checks it against Vega-Lite's schema."""
    if hasattr(value, "to_dict"):
        try:
            spec = value.to_dict() if validate else _unchecked(value)
        except Exception as exc:
            lost = _lost_connection(exc)  # a lazy queryset is evaluated here
            if lost:
                raise ChartError(f"{where} lost its database connection: {lost}") from None
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


def number_json(where: str, declaration: Declaration, value: Any, built_at: str) -> str:
    trend: dict[str, Any] = {}
    if isinstance(value, Trend):
        try:
            trend = value.as_dict(declaration.higher_is_better)
        except TypeError as exc:
            raise ChartError(f"{where} returned a Trend that JSON cannot hold: {exc}") from None
        value = trend["value"]
    if isinstance(value, Decimal):
        value = float(value)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ChartError(
            f"{where} returned {type(value).__name__}; return an int, float, Decimal or Trend"
        )
    data = {
        **trend,
        "value": value,
        "label": declaration.label,
        "unit": declaration.unit,
        "built_at": built_at,
    }
    try:
        return dumps(data)
    except ValueError as exc:
        raise ChartError(f"{where} returned {value!r}, which JSON cannot hold") from exc


def _unchecked(chart: Any) -> Any:
    """An Altair chart's spec without the schema check (other ``to_dict`` have none)."""
    try:
        return chart.to_dict(validate=False)
    except TypeError:
        return chart.to_dict()


def dumps(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, default=_json_default, allow_nan=False) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- once per build ---------------------------------------------------------------------


def dashboard(session: Session, generator_name: str) -> None:
    """Write the pages of the generator's charts built in this build, and its dashboard."""
    try:
        pages.write(session.catalog.generator(generator_name), session.made_in(generator_name))
    except OSError as exc:
        raise outputs.output_error(exc) from exc
    if session.note_pages(generator_name):
        manifest_file.mark_due()


def clean_extras(dryrun: bool) -> None:
    """doit ``clean``: the CSV files of charts' further data sets (not among any targets)."""
    for path in sorted(conf.output_dir().glob("*/*.*.csv")):
        if path.is_file() and path.name.split(".")[-2].isdigit():
            sys.stdout.write(f"export - removing file '{path}'\n")
            if not dryrun:
                path.unlink(missing_ok=True)


def manifest(session: Session) -> None:
    """Write ``manifest.json``: the entries of the generators touched in this build (every
    entry after a build that ended before it wrote the manifest)."""
    try:
        _write_manifest(session)
    except OSError as exc:
        raise outputs.output_error(exc) from exc
    finally:  # tried once: a failure leaves it due for the next build, not for the teardown
        session.manifest_written = True
    _note_published(session)


def _write_manifest(session: Session) -> None:
    written = None if session.manifest_due else session.touched()
    manifest_file.write(session.catalog, written)
    if storage.configured():
        storage.publish(written, confirm=session.confirm)
        if handover.enabled():
            try:
                session.state_saved = True  # the marker is this build's from here on
                handover.save()
            except Exception as exc:  # a successor rebuilds more, no less
                logger.warning("cannot save the build state for a successor: %s", exc)
    if not interrupts.requested():  # else a chart may be writing its record still
        manifest_file.clear_due()


def write_assets() -> None:
    try:
        assets.write()
    except OSError as exc:
        raise outputs.output_error(exc) from exc


def finish(session: Session) -> None:
    """Write what a failed chart kept its task from writing: dashboards, the manifest.

    doit runs this teardown in each of its worker threads as soon as the thread has
    nothing left to start, while others may still work; then once more in the thread that
    runs the build, when they are done. Only that last call writes.
    """
    if isinstance(threading.current_thread(), MThreadRunner.DaemonThread):
        # This worker thread of doit's is done: its database connections go with it now,
        # not when the garbage collector finds them (a long-lived builder would hold a
        # few more after every build).
        connections.close_all()
        return
    _write_what_was_held_back(session)
    session.save_costs()
    if session.adopted is not None and not session.state_saved:
        # doit has saved the charts taken over as built: this state directory holds the
        # saved state now (a publication of this build's saved a newer one already)
        session.adopted.done()
    if session.one_off:
        # Its build is done and saved: spare the interpreter's exit its garbage
        # collections over the task graph, the catalog, Altair and every module loaded
        # (longer than a no-op build's own work). Frozen objects are freed with the process.
        gc.freeze()


def _note_published(session: Session) -> None:
    """Record that what this build exported is published (``status`` counts the lag up to
    it): called once its manifest is written (and copied to the storage), so never by a
    build of a few generators (``gen:<generator>``), nor one with a failed chart (whose
    manifest is written by :func:`finish`), nor one that was stopped."""
    if session.exported is None or session.failed or interrupts.requested():
        return
    using = conf.database()
    try:
        exporter.Consumers(using, exporter.consumer_name(session.state_dir)).note_published(
            session.exported
        )
    except DatabaseError as exc:  # only `manage.py chartbuild status` reads it
        logger.warning("cannot record what this build published: %s", exc)


def _write_what_was_held_back(session: Session) -> None:
    missing, manifest_due = session.held_back()
    if not (missing or manifest_due):
        return
    cat = session.catalog
    for name in missing:
        try:
            pages.write(cat.generator(name), session.made_in(name))
        except (KeyError, OSError) as exc:
            logger.error("cannot write the dashboard of %s: %s", name, exc)
    if manifest_due:
        try:
            _write_manifest(session)
        except (OSError, ChartbuildError) as exc:
            logger.error("cannot write the manifest: %s", exc)
