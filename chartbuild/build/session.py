"""One build: what it holds, what it knows and what it has done.

A :class:`Session` lives as long as one build. The task graph is declared with it (doit
calls :func:`chartbuild.build.tasks.task_chartbuild` once per run, which takes the session
of the build starting: :func:`current`), and every action of the graph is given it
(:mod:`chartbuild.build.actions`). It holds the build locks (the state directory's and
the database's), the catalog the graph was declared from, and what the build did: which
generators it built charts of, which pages and whether the manifest it wrote, whether an
earlier build left the manifest due. Nothing of a build outlives its session, so a
long-lived process (``doit auto``, a web process's hook) starts each build afresh.

Who starts a build makes its session: :func:`chartbuild.build.runner.build` for a build
run in this process (``doit auto``, ``gencharts``, ``gen``, the hook), which makes it
:func:`active` while doit runs; a one-off ``doit`` process otherwise, when it declares its
graph. A one-off process ends with its build, which is why its session is ``one_off``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chartbuild import conf, names
from chartbuild.build import interrupts, plan
from chartbuild.build.dblock import DatabaseLock
from chartbuild.build.hashes import FileHashes
from chartbuild.build.lock import FileLock
from chartbuild.declare import catalog
from chartbuild.declare.catalog import Generator
from chartbuild.declare.registry import Declaration
from chartbuild.exceptions import ChartbuildError
from chartbuild.export import changes as export_changes
from chartbuild.export.exporter import stamp_path
from chartbuild.files import write_if_changed

logger = logging.getLogger(__name__)

_active: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "chartbuild_session", default=None
)


@dataclass(eq=False)
class Session:
    """One build (see the module's documentation)."""

    #: A build that ends with its process (a one-off ``doit``), not one run by a process
    #: that goes on (:mod:`chartbuild.build.runner`).
    one_off: bool = True
    state_dir: Path = field(default_factory=conf.state_dir)
    output_dir: Path = field(default_factory=conf.output_dir)
    #: The process that declared the graph: its actions must run in it.
    pid: int = field(default_factory=os.getpid)
    #: A leading builder's session (:mod:`chartbuild.live.leader`): the database's build
    #: lock is taken on it, not on a session of the build's own.
    lead_session: Any = None
    #: doit's state file as this build's doit opened it (:mod:`chartbuild.build.doitdb`):
    #: read again once the locks are held.
    state_db: Any = None
    #: Rebuild everything (the database was replaced): no saved state is taken over.
    reset: bool = False
    #: What happened before the build: it took over the state another builder saved.
    note: str = ""
    #: A plain build: no task named, nothing forced. It may declare only the tasks a
    #: change made due (:mod:`chartbuild.build.plan`).
    plain: bool = False

    # -- what it holds --------------------------------------------------------------------
    file_lock: FileLock | None = None
    database_lock: DatabaseLock | None = None

    # -- what it did ----------------------------------------------------------------------
    #: Generators with a chart or number built (or failed) in this build.
    built: set[str] = field(default_factory=set)
    #: Charts and numbers built (successfully) in this build, by generator.
    made: dict[str, set[str]] = field(default_factory=dict)
    #: Generators whose pages and dashboard their own task wrote in this build.
    pages_written: set[str] = field(default_factory=set)
    #: Whether the manifest task ran (written, or tried once) in this build.
    manifest_written: bool = False
    #: Whether the manifest was due when this build began: an earlier build wrote records
    #: and did not get to write the manifest (it was killed, say).
    manifest_due: bool = False
    #: Whether a chart or number failed in this build.
    failed: bool = False
    #: The newest change record of each source the export read: recorded as published
    #: once this build's manifest is written (:func:`chartbuild.build.actions.manifest`).
    exported: dict[str, int] | None = None
    #: The saved build state this build took over (:mod:`chartbuild.build.handover`).
    adopted: Any = None
    #: Whether this build saved a build state for a successor.
    state_saved: bool = False
    #: What the export found changed (None until it ran), or why it could not run.
    changed: tuple[str, ...] | None = None
    export_error: ChartbuildError | None = None
    #: The plan of a plain build, once made: the tasks its graph declares besides the
    #: export (None: every task), the record it went by, and the signatures it took of
    #: the files that record watches (:mod:`chartbuild.build.plan`).
    planned: bool = False
    due: frozenset[str] | None = None
    record: plan.Record | None = None
    sources: dict[str, plan.Signature] = field(default_factory=dict)
    #: Charts and numbers that failed in this build; whether another task failed.
    failures: set[str] = field(default_factory=set)
    broken: bool = False

    def __post_init__(self) -> None:
        self._guard = threading.Lock()
        self._catalog: catalog.Catalog | None = None
        #: Each file's md5, once per version of it (doit's checks, the charts' inputs).
        self.hashes = FileHashes()
        #: The ``file_dep`` of each chart and number task, as the graph declared them.
        self.file_deps: dict[str, list[str]] = {}
        self._stamps: dict[str, str] = {}
        #: What each chart and number built took, and what the last builds' took.
        self._took: dict[str, float] = {}
        self._costs: dict[str, Any] | None = None
        self._changes: dict[str, list[dict[str, Any]]] | None = None

    # -- the build in progress ------------------------------------------------------------

    @contextlib.contextmanager
    def active(self) -> Iterator[Session]:
        """Make this the session of the build that doit runs in this thread meanwhile."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    # -- what it knows --------------------------------------------------------------------

    @property
    def catalog(self) -> catalog.Catalog:
        """What the generators declare, as this build's graph was declared from it: read
        again, unless the plan's record holds (no generator changed since a build of this
        process read them)."""
        with self._guard:
            if self._catalog is None:
                held = self.planned and self.record is not None
                self._catalog = catalog.cached() if held else catalog.load()
            return self._catalog

    def models(self) -> list[str]:
        """The models the charts read: the plan's record says so when it holds."""
        if self.planned and self.record is not None:
            return list(self.record.models)
        return self.catalog.models()

    def watched_columns(self) -> dict[str, frozenset[str] | None]:
        """``{table: the columns an UPDATE must set to concern a chart}`` (None: any), of
        the plan's record when it holds (:func:`chartbuild.capture.triggers.watched_columns`)."""
        from chartbuild.capture import triggers  # its models need Django set up

        if self.planned and self.record is not None:
            return {
                table: None if columns is None else frozenset(columns)
                for table, columns in self.record.columns.items()
            }
        return triggers.watched_columns(self.catalog)

    def file_deps_of(self, task: str) -> list[str] | None:
        """The ``file_dep`` of chart or number ``task`` (None if the graph has no such task
        that can build: see :meth:`deps_of`)."""
        with self._guard:
            found = self.file_deps.get(task)
        if found is not None:
            return found
        generator_name, _, name = task.partition(".")
        cat = self.catalog
        try:
            generator = cat.generator(generator_name)
            declaration = generator.get(name)
        except KeyError:
            return None
        if generator.error or cat.problems_of(generator_name, name):
            return None  # its task only fails, with the problem
        return self.deps_of(generator, declaration)

    def deps_of(self, generator: Generator, declaration: Declaration) -> list[str]:
        """The ``file_dep`` of the task of ``declaration``: the stamps of the models it
        reads and its generator's source."""
        task = names.task_name(generator.name, declaration.name)
        with self._guard:
            found = self.file_deps.get(task)
            if found is None:
                stamps = [self._stamp(m) for m in declaration.models]
                source = [str(generator.path)] if generator.path is not None else []
                found = self.file_deps[task] = [*stamps, *source]
            return found

    def _stamp(self, model: str) -> str:
        # as plain strings, each made once: a large site has thousands of tasks
        found = self._stamps.get(model)
        if found is None:
            found = self._stamps[model] = str(stamp_path(self.state_dir, model))
        return found

    def changes(self) -> dict[str, list[dict[str, Any]]]:
        """What the exports told of each model's changes (read once per build, after the
        export: :mod:`chartbuild.export.changes`)."""
        with self._guard:
            if self._changes is None:
                self._changes = export_changes.load(self.state_dir)
            return self._changes

    def undeclared(self) -> int:
        """How many charts and numbers the plan left out of the graph: up to date."""
        if self.due is None or self.record is None:
            return 0
        return max(0, self.record.charts - sum(names.is_chart_task(t) for t in self.due))

    def declares(self, task: str) -> bool:
        """Whether this build's graph declares ``task`` (a chart, number, ``gen:`` task or
        the manifest): every task, unless its plan says which."""
        return self.due is None or task in self.due

    # -- what it holds --------------------------------------------------------------------

    def lock(self, timeout: float) -> bool:
        """Take the build locks (this state directory's, then the database's) unless held.

        Returns whether they were taken now. Raises :class:`~chartbuild.exceptions.LockTimeout`
        naming the build under way if another one keeps one longer than ``timeout`` seconds.
        """
        if self.file_lock is not None:
            return False
        self.file_lock = FileLock.take(self.state_dir, timeout)
        try:
            self.database_lock = DatabaseLock.take(timeout, on=self.lead_session)
        except BaseException:
            self.file_lock.release()
            self.file_lock = None
            raise
        if self.state_db is not None:  # what doit read of it before may be outdated now
            self.state_db.reread()
        return True

    def confirm(self) -> None:
        """Before it publishes: this build still holds the database's build lock (if it
        took one). Raises :class:`ChartbuildError` if it lost it."""
        if self.database_lock is not None:
            self.database_lock.confirm()

    def release(self) -> None:
        """Give the build locks back (the database's first: they are taken the other way)."""
        held, self.database_lock = self.database_lock, None
        if held is not None:
            held.release()
        locked, self.file_lock = self.file_lock, None
        if locked is not None:
            locked.release()

    def check_process(self) -> None:
        """An action runs in the process that declared the graph, or its work is lost."""
        if os.getpid() != self.pid:
            raise ChartbuildError(
                "chartbuild builds in threads and renders in worker processes of its own: "
                "run doit without `-P process` (`-n N` sets the number of threads)"
            )

    # -- what it did ----------------------------------------------------------------------

    def touch(self, generator: str) -> bool:
        """Note that this build writes something of ``generator``; return whether it is the
        first thing it writes (the manifest is due from then on)."""
        with self._guard:
            first = not (self.built or self.pages_written)
            self.built.add(generator)
        return first

    def note_made(self, generator: str, name: str, seconds: float = 0.0) -> None:
        with self._guard:
            self.made.setdefault(generator, set()).add(name)
            self._took[names.task_name(generator, name)] = seconds

    def took(self, task: str) -> float | None:
        """The seconds chart or number ``task`` took when last built (None: not known),
        from ``costs.json``, read once per build: the order its tasks start in
        (:mod:`chartbuild.build.order`) asks for every one."""
        with self._guard:
            if self._costs is None:
                try:
                    found = json.loads(costs_path(self.state_dir).read_text())
                except (OSError, ValueError):
                    found = {}
                self._costs = found if isinstance(found, dict) else {}
            value = self._costs.get(task)
        return float(value) if isinstance(value, int | float) else None

    def save_costs(self) -> None:
        """Add what this build's charts and numbers took to ``costs.json`` (best-effort)."""
        with self._guard:
            took = dict(self._took)
        if not took:
            return
        self.took("")  # the saved ones, read
        with self._guard:
            costs = {**(self._costs or {}), **took}
        try:
            write_if_changed(costs_path(self.state_dir), json.dumps(costs, sort_keys=True))
        except OSError as exc:
            logger.warning("cannot write %s: %s", costs_path(self.state_dir), exc)

    def made_in(self, generator: str) -> set[str]:
        with self._guard:
            return set(self.made.get(generator, ()))

    def note_pages(self, generator: str) -> bool:
        """Note that the pages of ``generator`` were written; return whether they are the
        first thing this build writes."""
        with self._guard:
            first = not (self.built or self.pages_written)
            self.pages_written.add(generator)
        return first

    def nothing_built(self, generator: str) -> bool:
        """doit ``uptodate`` of a generator's pages: none of its charts ran this build."""
        with self._guard:
            return generator not in self.built

    def touched(self) -> set[str]:
        """The generators with a chart, a number or a page written (or failed) this build."""
        with self._guard:
            return self.built | self.pages_written

    def nothing_touched(self) -> bool:
        """doit ``uptodate`` of the manifest: nothing it lists was written this build, nor by
        an earlier one that ended before it wrote the manifest."""
        return not self.touched() and not self.manifest_due

    def saved(self, dep_file: str) -> None:
        """doit has saved its state: leave the record of a plain build that left every task
        up to date, or whose only failures were charts and numbers (see
        :mod:`chartbuild.build.plan`)."""
        if not self.planned or self.changed is None or self.export_error is not None:
            return
        if self.broken or interrupts.requested():
            return
        record = plan.Record(
            settings=plan.settings_key(),
            sources=self.sources,
            outputs={p: plan.signature(p) for p in plan.outputs(self.output_dir, dep_file)},
            models=self.models(),
            columns={
                table: None if columns is None else sorted(columns)
                for table, columns in sorted(self.watched_columns().items())
            },
            failed=sorted(self.failures),
            charts=self.record.charts if self.record is not None else len(self.file_deps),
        )
        try:
            plan.save(self.state_dir, record)
        except OSError as exc:  # the next plain build checks every task
            logger.warning("cannot write %s: %s", plan.record_path(self.state_dir), exc)

    def note_failed(self, task: str) -> None:
        """Note that ``task`` failed (a chart or number, or another)."""
        with self._guard:
            if names.is_chart_task(task):
                self.failures.add(task)
            else:
                self.broken = True

    def held_back(self) -> tuple[list[str], bool]:
        """What a failed chart kept its generator's task (or the manifest's) from writing:
        the generators whose pages are missing, and whether the manifest is."""
        with self._guard:
            missing = sorted(self.built - self.pages_written)
            manifest = (bool(self.built) or self.manifest_due) and not self.manifest_written
        return missing, manifest


def costs_path(state_dir: Path) -> Path:
    """Where the seconds each chart and number last took to build are kept."""
    return state_dir / "costs.json"


def current() -> Session:
    """The session of the build doit declares its graph for: the one :meth:`Session.active`
    made current (a build run in this process), else the process's own, made now (a
    one-off ``doit``, whose ``dodo.py`` asks for it first, in :func:`.tasks.doit_config`)."""
    found = _active.get()
    if found is None:
        found = Session(one_off=True, plain=plan.plain_command())
        _active.set(found)
    return found
