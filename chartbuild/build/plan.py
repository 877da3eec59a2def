"""Which tasks a build hands doit: those a change can have made stale, and what they feed.

doit decides what to run by loading and checking every task: with 10,000 charts that
costs most of a second, even when nothing changed. A *plain* build (``doit`` or ``doit
run`` with no task named and nothing forced, ``doit auto``, ``gencharts``, the hook)
knows better: its export says which models changed and the catalog says which charts
read them. So a plain build exports as its graph is declared, and declares only

- the charts and numbers that read a model the export found changed, and those whose
  last build failed;
- the ``gen:`` tasks of their generators, and the manifest;

and nothing but its export when none of them is due (nor a manifest an earlier build
left due). doit then checks these tasks as usual.

It may only when the previous plain build left a :class:`Record` that still holds
(``plan.json`` in the state directory). The record is written once doit has saved its
state after a plain build that left every task up to date, or whose only failures were
charts and numbers (named in it, to run again). It names what else can make a task stale:
the generators' sources, the page templates (and where an overriding one could be
added), the assets' sources, the catalog's cache, doit's own state file (``doit forget``,
``doit reset-dep``), the output folders (a deleted output changes its folder) and the
settings and versions the outputs are made with. If any of them differs, or there is no
record, the build declares the whole graph and doit checks every task, as always. A build
removes the record before it exports, so a build that crashes, is stopped, builds
named tasks, is forced or takes over another builder's state leaves none, and the next
plain build checks everything.

``doit list``, ``info``, ``clean``, ``forget`` and builds of named tasks always declare
the whole graph.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from django.conf import settings

from chartbuild.declare.catalog import Catalog
from chartbuild.files import write_if_changed

logger = logging.getLogger(__name__)

#: The record's format: a record of another format does not hold.
VERSION = 2

#: A file's or folder's version: inode, size, mtime and ctime (None: it does not exist).
Signature = list[int] | None


def record_path(state_dir: Path) -> Path:
    return state_dir / "plan.json"


@dataclass
class Record:
    """What a plain build left up to date, and what must not have changed since."""

    #: The settings and versions the outputs were made with (:func:`settings_key`).
    settings: str
    #: The sources of the tasks besides the stamps (generators, templates, assets, the
    #: catalog), by path, with their signatures as the build began.
    sources: dict[str, Signature]
    #: What builds write (the output folders, doit's state file), as the build ended.
    outputs: dict[str, Signature]
    #: The models the charts read (the export's), so that a build with nothing to do
    #: needs not read the catalog.
    models: list[str]
    #: The columns an ``UPDATE`` of each watched table must set to concern a chart (None:
    #: any), which the export checks the capture triggers against, for the same reason.
    columns: dict[str, list[str] | None] = field(default_factory=dict)
    #: Charts and numbers that failed: the next plain build runs them again.
    failed: list[str] = field(default_factory=list)
    #: How many charts and numbers the graph has.
    charts: int = 0
    version: int = VERSION

    def holds(self) -> bool:
        """Whether nothing it watches changed since it was written."""
        return not self.changed()

    def changed(self) -> list[str]:
        """What changed since it was written (for the log)."""
        if self.version != VERSION or self.settings != settings_key():
            return ["the settings or versions"]
        files = {**self.sources, **self.outputs}
        return [path for path, found in files.items() if signature(path) != found]


def load(state_dir: Path) -> Record | None:
    """The record of the last plain build, if there is a readable one."""
    try:
        data = json.loads(record_path(state_dir).read_text())
        record = Record(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        logger.debug("unreadable plan record: %s", exc)
        return None
    if not all(isinstance(x, dict) for x in (record.sources, record.outputs)):
        return None
    return record


def forget(state_dir: Path) -> None:
    """Remove the record: the next plain build checks every task."""
    with contextlib.suppress(FileNotFoundError):
        record_path(state_dir).unlink()


def save(state_dir: Path, record: Record) -> None:
    write_if_changed(record_path(state_dir), json.dumps(asdict(record), sort_keys=True) + "\n")


def signature(path: str) -> Signature:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def settings_key() -> str:
    """A digest of what the outputs are made with besides the files: chartbuild's
    settings, the template settings, the installed apps and the versions."""
    values: dict[str, Any] = {
        name: getattr(settings, name)
        for name in dir(settings)
        if name.startswith("CHARTBUILD_") or name in ("TEMPLATES", "INSTALLED_APPS")
    }
    values["versions"] = _versions()
    text = json.dumps(values, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _versions() -> tuple[str, ...]:
    """Those of this process's code (a process goes on with the code it imported)."""
    return (sys.version, *(version(p) for p in ("chartbuild", "vl-convert-python", "doit")))


def sources(cat: Catalog, state_dir: Path) -> list[str]:
    """The files and folders whose change can make a task stale, other than a stamp and
    what builds write: the generators' sources (and where an app's ``charts.py`` would
    be found), the catalog's cache, the page templates, the assets' sources."""
    from django.apps import apps

    from chartbuild import conf
    from chartbuild.declare import catalog
    from chartbuild.publish import assets, pages

    paths = [str(g.path) for g in cat.generators if g.path is not None]
    if conf.autodiscover():
        paths += [str(Path(c.path) / "charts.py") for c in apps.get_app_configs()]
    paths += [str(catalog.cache_path(state_dir)), *pages.watched()]
    paths += [str(p) for p in assets.sources()]
    return sorted(set(paths))


def outputs(output_dir: Path, dep_file: str) -> list[str]:
    """What builds write: doit's state file, the output folder and its folders (where a
    deleted output changes its folder)."""
    paths = [dep_file + suffix for suffix in ("", "-journal", "-wal")]
    paths.append(str(output_dir))
    with contextlib.suppress(OSError):
        paths += sorted(entry.path for entry in os.scandir(output_dir) if entry.is_dir())
    return paths


def wanted(cat: Catalog, changed: Iterable[str], failed: Iterable[str]) -> frozenset[str]:
    """The tasks a plain build declares: the charts and numbers that read a model in
    ``changed`` and those in ``failed``, their generators' ``gen:`` tasks and the
    manifest (nothing if no chart or number is due)."""
    charts = {task for readers in cat.readers(changed).values() for task in readers}
    charts |= set(failed)
    if not charts:
        return frozenset()
    generators = {task.split(".", 1)[0] for task in charts}
    return frozenset({*charts, *(f"gen:{g}" for g in generators), "manifest"})


def plain_command(argv: Sequence[str] | None = None) -> bool:
    """Whether this process is doit's command line running a plain build: ``doit`` or
    ``doit run`` with options but no task named, nothing forced (``-a``) and no task
    loaded from elsewhere than its ``dodo.py``. False whenever it cannot tell."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return False
    program = Path(argv[0])
    module = program.name == "__main__.py" and program.parent.name == "doit"
    if program.name != "doit" and not module:
        return False
    from doit.cmd_base import DodoTaskLoader, DoitCmdBase
    from doit.cmd_run import Run
    from doit.cmdparse import CmdOption, CmdParse, CmdParseError

    args = list(argv[1:])
    if args and args[0] in ("--version", "--help"):
        return False
    # as doit's own command line does: its loader's options may come first
    with contextlib.suppress(CmdParseError):
        _, args = CmdParse([CmdOption(o) for o in DodoTaskLoader.cmd_options]).parse_only(args)
    args = [a for a in args if a.startswith("-") or "=" not in a]  # doit's variables
    if args and args[0] == "run":
        args = args[1:]
    options = (*DoitCmdBase.base_options, *DodoTaskLoader.cmd_options, *Run.cmd_options)
    try:
        params, positional = CmdParse([CmdOption(o) for o in options]).parse(args)
    except CmdParseError:
        return False
    return not positional and not params.get("always")
