"""The doit task graph. A project's ``dodo.py`` sets Django up and imports these.

Tasks:
- ``export``: takes the build lock, then turns new changes into stamp files. Its
  teardown, run at the very end, writes any dashboard or manifest that a failed chart
  kept from being written by its own task.
- ``<generator>.<name>``: one task per chart and number. ``file_dep`` = the stamps
  of the models it reads and its generator's source; ``targets`` = its outputs.
- ``gen:<generator>``: the pages of the generator's charts and its dashboard, once its
  charts and numbers are done (so ``doit gen:users`` builds one generator); only when
  one of them ran, or when the page templates or chartbuild's version changed.
- ``assets``: the shared scripts and style sheet; ``manifest``: ``manifest.json``, after
  every chart, only when one ran or the generators changed.

Builds run in parallel by default: tasks in threads (``CHARTBUILD_PARALLEL``, or doit's
``-n``), renders in worker processes (:mod:`chartbuild.build.render`).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from chartbuild import conf, names
from chartbuild.build import actions, interrupts, order, progress, session
from chartbuild.build.hashes import checker
from chartbuild.declare import catalog
from chartbuild.declare.registry import Declaration
from chartbuild.exceptions import ChartbuildError
from chartbuild.export.exporter import stamp_path
from chartbuild.publish import assets, outputs, pages

__all__ = ["task_assets", "task_charts", "task_export", "task_gen", "task_manifest"]

Task = dict[str, Any]


def doit_config(*, interruptible: bool = True) -> dict[str, Any]:
    """``DOIT_CONFIG`` for a chartbuild dodo.py: state, parallelism and progress lines.

    The backend is doit's ``sqlite3`` one (two builders never lose each other's updates),
    as :class:`chartbuild.build.doitdb.DoitDB`: an unreadable file means a full rebuild, not a
    traceback. With ``interruptible`` (for a process that is a builder, not a web
    server's) Ctrl-C and SIGTERM stop the build at once (:mod:`chartbuild.build.interrupts`).
    doit starts the slowest chart the export releases first, then the numbers, then the
    other charts (:mod:`chartbuild.build.order`).
    """
    state = conf.state_dir()
    state.mkdir(parents=True, exist_ok=True)
    order.install()
    if interruptible:
        interrupts.install()
    parallel = conf.parallel()
    return {
        "backend": "chartbuild",
        "dep_file": str(state / "doit.sqlite3"),
        "check_file_uptodate": checker(session.current().hashes),
        "continue": True,
        "reporter": progress.Reporter,
        "num_process": parallel if parallel > 1 else 0,
        "par_type": "thread",
    }


def _run(build: session.Session, task: str, action: Any, *args: Any) -> TaskFailed | dict[str, Any]:
    """Run an action of ``task``; chartbuild's errors fail the task with their message."""
    try:
        result = action(*args)
    except ChartbuildError as exc:
        build.note_failed(task)
        return TaskFailed(str(exc))
    except BaseException:
        build.note_failed(task)
        raise
    return {"result": list(result)} if isinstance(result, tuple) else {}


def _planned(build: session.Session) -> session.Session:
    """The build, with its plan made if it is a plain one (:mod:`chartbuild.build.plan`)."""
    if build.plain:
        actions.plan_build(build)
    return build


def _fail(build: session.Session, task: str, message: str) -> TaskFailed:
    build.note_failed(task)  # a plain build runs it again, and fails, until it is fixed
    return TaskFailed(message)


#: doit captures a Python action's output by swapping ``sys.stdout`` and ``sys.stderr``
#: around it: threads that run at once would leave them in disorder. chartbuild's actions
#: print nothing (their warnings go to the logging handlers), so nothing is swapped.
UNCAPTURED = {"io": {"capture": False}, "verbosity": 0}


def _out(*paths: str) -> list[str]:
    out = f"{conf.output_dir()}{os.sep}"
    return [out + p for p in paths]


def task_export() -> Task:
    """Export new model changes to one stamp file per model."""
    build = _planned(session.current())
    models = build.models()
    state = build.state_dir
    return {
        "actions": [(_run, [build, "export", actions.export, build, models])],
        "teardown": [(actions.finish, [build])],
        # the CSV files of charts' further data sets are none of their tasks' targets
        "clean": [actions.clean_extras],
        "targets": [str(stamp_path(state, m)) for m in models],
        "uptodate": [False],
        **UNCAPTURED,
    }


def _generators(cat: catalog.Catalog) -> list[catalog.Generator]:
    """Each generator name once (a duplicate is a configuration error of the first)."""
    unique: dict[str, catalog.Generator] = {}
    for generator in cat.generators:
        unique.setdefault(generator.name, generator)
    return list(unique.values())


def _declarations(generator: catalog.Generator) -> list[Declaration]:
    """Each name once, numbers (cheap) first."""
    unique: dict[str, Declaration] = {}
    for declaration in generator.declarations:
        unique.setdefault(declaration.name, declaration)
    return sorted(unique.values(), key=lambda d: d.kind != "number")


def task_charts() -> Iterator[Task] | None:
    """One task per chart and number, named <generator>.<name>."""
    build = _planned(session.current())
    if build.due is not None and not build.due:
        return None  # nothing to declare: not even the catalog is read
    return _charts(build)


def _charts(build: session.Session) -> Iterator[Task]:
    cat = build.catalog
    out = f"{build.output_dir}{os.sep}"
    troubled = {(p.generator, p.name) for p in cat.problems}
    for generator in _generators(cat):
        if generator.error:
            continue
        for declaration in _declarations(generator):
            name = names.task_name(generator.name, declaration.name)
            if not build.declares(name):
                continue
            reads = ", ".join([*(f"rollup {r}" for r in declaration.rollups), *declaration.models])
            doc = f"{declaration.title} ({declaration.kind}; reads {reads})"
            if (generator.name, declaration.name) in troubled or (generator.name, "") in troubled:
                problems = cat.problems_of(generator.name, declaration.name)
                message = "\n".join(f"{p.id}: {p.msg}. {p.hint}" for p in problems)
                failing = [(_fail, [build, name, message])]
                yield {"basename": name, "doc": doc, "actions": failing, **UNCAPTURED}
                continue
            yield {
                "basename": name,
                "doc": doc,
                "actions": [
                    (
                        _run,
                        [build, name, actions.build_item, build, generator.name, declaration.name],
                    )
                ],
                "file_dep": build.deps_of(generator, declaration),
                "targets": [out + p for p in outputs.paths(generator.name, declaration)],
                "clean": True,
                # the slowest chart first, then the numbers (chartbuild.build.order)
                "meta": {order.COST: functools.partial(_cost, build, declaration, name)},
                **UNCAPTURED,
            }


def _cost(build: session.Session, declaration: Declaration, task: str) -> float:
    """A number is quick; a chart costs the seconds its last good build took, in powers of
    two (one never built, most): see :mod:`chartbuild.build.order`."""
    if declaration.kind == "number":
        return order.QUICK
    took = build.took(task)
    return math.inf if took is None else float(math.floor(math.log2(max(took, 1e-6))))


def task_gen() -> Iterator[Task] | None:
    """Build one generator: its charts and numbers, then their pages and its dashboard."""
    build = _planned(session.current())
    if build.due is not None and not build.due:
        return None
    return _pages(build)


def _pages(build: session.Session) -> Iterator[Task]:
    cat = build.catalog
    templates = pages.sources()
    chartbuild_version = config_changed(version("chartbuild"))
    troubled = {(p.generator, p.name) for p in cat.problems}
    for generator in _generators(cat):
        if not build.declares(f"gen:{generator.name}"):
            continue
        if generator.error:
            yield {
                "name": generator.name,
                "doc": f"generator {generator.module} (cannot be imported)",
                "actions": [(_fail, [build, f"gen:{generator.name}", generator.error])],
                "file_dep": [str(generator.path)] if generator.path else [],
                **UNCAPTURED,
            }
            continue
        declared = _declarations(generator)
        pages_of = [
            outputs.page(generator.name, d)
            for d in declared
            if d.kind == "chart" and (generator.name, d.name) not in troubled
        ]
        yield {
            "name": generator.name,
            "doc": f"pages and dashboard of {generator.module}",
            "actions": [
                (_run, [build, f"gen:{generator.name}", actions.dashboard, build, generator.name])
            ],
            "task_dep": [
                task
                for task in (names.task_name(generator.name, d.name) for d in declared)
                if build.declares(task)
            ],
            # the pages are made of the templates, and of chartbuild's code
            "file_dep": templates,
            "targets": _out(outputs.dashboard(generator.name), *pages_of),
            "uptodate": [(build.nothing_built, [generator.name]), chartbuild_version],
            "clean": True,
            **UNCAPTURED,
        }


def task_assets() -> Task | None:
    """The shared Vega scripts and style sheet of the pages (no CDN)."""
    build = _planned(session.current())
    if build.due is not None:
        return None  # its sources are among those the plan found unchanged
    return {
        "actions": [(_run, [build, "assets", actions.write_assets])],
        "file_dep": [str(path) for path in assets.sources()],
        "targets": _out(*outputs.assets()),
        "uptodate": [config_changed(version("vl-convert-python"))],
        "clean": True,
        **UNCAPTURED,
    }


def task_manifest() -> Task | None:
    """manifest.json: every chart and number with its task, models, outputs and build time."""
    build = _planned(session.current())
    if not build.declares("manifest"):
        return None
    return {
        "actions": [(_run, [build, "manifest", actions.manifest, build])],
        # after every dashboard, so after every chart (each dashboard waits for its charts)
        "task_dep": [
            f"gen:{g.name}"
            for g in _generators(build.catalog)
            if not g.error and build.declares(f"gen:{g.name}")
        ],
        # what the generators declare is in the catalog's cache: a change there is one here
        "file_dep": [str(catalog.cache_path())],
        "targets": _out(outputs.manifest()),
        "uptodate": [build.nothing_touched],
        "clean": True,
        **UNCAPTURED,
    }
