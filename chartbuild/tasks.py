"""The doit task graph. A project's ``dodo.py`` sets Django up and imports these.

Tasks:
- ``export``: takes the build lock, then turns new change events into stamp files.
- ``<generator>.<name>``: one task per chart and number. ``file_dep`` = the stamps
  of the models it reads and its generator's source; ``targets`` = its outputs.
- ``gen:<generator>``: depends on all charts and numbers of the generator, so
  ``doit gen:users`` builds one generator; each chart refreshes the dashboard as it
  builds, and this task writes the dashboard when it is missing.
- ``assets``: the shared scripts and style sheet; ``manifest``: ``manifest.json``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from importlib.metadata import version
from typing import Any

from doit.dependency import MD5Checker, get_file_md5
from doit.exceptions import TaskFailed
from doit.tools import config_changed

from chartbuild import builder, catalog, conf, outputs
from chartbuild.exceptions import ChartbuildError
from chartbuild.exporter import stamp_path
from chartbuild.registry import Declaration

__all__ = ["task_assets", "task_charts", "task_export", "task_gen", "task_manifest"]

Task = dict[str, Any]


class ContentChecker(MD5Checker):  # type: ignore[misc]
    """Decides whether a ``file_dep`` changed by its content alone.

    doit's default checker trusts an unchanged mtime. A stamp can change twice within
    one mtime tick on a filesystem with coarse timestamps, keeping its size; comparing
    content costs little for stamps and generator sources.
    """

    def check_modified(self, file_path: str, file_stat: Any, state: Any) -> bool:
        _, size, md5 = state
        return bool(file_stat.st_size != size or md5 != get_file_md5(file_path))

    def get_state(self, dep: str, current_state: Any) -> Any:
        state = (os.path.getmtime(dep), os.path.getsize(dep), get_file_md5(dep))
        return None if current_state and list(current_state) == list(state) else state


def doit_config() -> dict[str, Any]:
    """``DOIT_CONFIG`` for a chartbuild dodo.py: sqlite3 state in the state dir.

    The backend is doit's ``sqlite3`` one (two builders never lose each other's updates),
    as :class:`chartbuild.doitdb.DoitDB`: an unreadable file means a full rebuild, not a
    traceback.
    """
    state = conf.state_dir()
    state.mkdir(parents=True, exist_ok=True)
    return {
        "backend": "chartbuild",
        "dep_file": str(state / "doit.sqlite3"),
        "check_file_uptodate": ContentChecker,
        "continue": True,
    }


@functools.cache
def _catalog() -> catalog.Catalog:
    return catalog.load()


def reset() -> None:
    """Forget the catalog read for the previous task load (a long-lived process builds again)."""
    _catalog.cache_clear()


def _run(action: Callable[..., Any], *args: Any) -> TaskFailed | dict[str, Any]:
    """Run a builder action; chartbuild's errors fail the task with their message."""
    try:
        result = action(*args)
    except ChartbuildError as exc:
        return TaskFailed(str(exc))
    return {"result": list(result)} if isinstance(result, tuple) else {}


def _fail(message: str) -> TaskFailed:
    return TaskFailed(message)


def _out(*paths: str) -> list[str]:
    out = conf.output_dir()
    return [str(out / p) for p in paths]


def task_export() -> Task:
    """Export new model change events to one stamp file per model."""
    models = _catalog().models()
    state = conf.state_dir()
    return {
        "actions": [(_run, [builder.export, models])],
        "targets": [str(stamp_path(state, m)) for m in models],
        "uptodate": [False],
        "verbosity": 2,
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


def task_charts() -> Iterator[Task]:
    """One task per chart and number, named <generator>.<name>."""
    cat = _catalog()
    state = conf.state_dir()
    for generator in _generators(cat):
        if generator.error:
            continue
        for declaration in _declarations(generator):
            name = builder.task_name(generator.name, declaration.name)
            doc = f"{declaration.title} ({declaration.kind}; reads {', '.join(declaration.models)})"
            problems = cat.problems_of(generator.name, declaration.name)
            if problems:
                message = "\n".join(f"{p.id}: {p.msg}. {p.hint}" for p in problems)
                yield {"basename": name, "doc": doc, "actions": [(_fail, [message])]}
                continue
            deps = [str(stamp_path(state, m)) for m in declaration.models]
            if generator.path is not None:
                deps.append(str(generator.path))
            yield {
                "basename": name,
                "doc": doc,
                "actions": [(_run, [builder.build, generator.name, declaration.name])],
                "file_dep": deps,
                "targets": _out(*outputs.of(generator.name, declaration)),
                "clean": True,
            }


def task_gen() -> Iterator[Task]:
    """Build one generator: its charts, numbers and dashboard."""
    cat = _catalog()
    for generator in _generators(cat):
        if generator.error:
            yield {
                "name": generator.name,
                "doc": f"generator {generator.module} (cannot be imported)",
                "actions": [(_fail, [generator.error])],
                "file_dep": [str(generator.path)] if generator.path else [],
            }
            continue
        # Each chart's action refreshes the dashboard, so one failing chart does not
        # keep the others off it; this task writes it when it is missing.
        yield {
            "name": generator.name,
            "doc": f"dashboard of {generator.module}",
            "actions": [(_run, [builder.dashboard, generator.name])],
            "task_dep": [
                builder.task_name(generator.name, d.name) for d in _declarations(generator)
            ],
            "targets": _out(outputs.dashboard(generator.name)),
            "uptodate": [True],
            "clean": True,
        }


def task_assets() -> Task:
    """The shared Vega scripts and style sheet of the pages (no CDN)."""
    sources = [str(builder.PACKAGE_STATIC / name) for name in outputs.PACKAGE_ASSETS]
    return {
        "actions": [(_run, [builder.assets])],
        "file_dep": sources,
        "targets": _out(*outputs.assets()),
        "uptodate": [config_changed(version("vl-convert-python"))],
        "clean": True,
    }


def task_manifest() -> Task:
    """manifest.json: every chart and number with its task, models, outputs and build time."""
    return {
        "actions": [(_run, [builder.manifest])],
        "targets": _out(outputs.manifest()),
        "uptodate": [False],
        "clean": True,
    }
