"""Running the task graph in this process: for the management commands, the hook and ``doit auto``.

:func:`build` runs doit as a library, under the build lock, and reports what happened
in a :class:`BuildResult` instead of printing. The lock is held until doit has saved
its state, then released, so a long-lived process can build again and again.
"""

from __future__ import annotations

import functools
import importlib.metadata
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from typing import Any

import doit.plugin
from doit.cmd_base import ModuleTaskLoader, TaskLoader2
from doit.doit_cmd import DoitMain
from doit.exceptions import UnmetDependency

from chartbuild import conf, names
from chartbuild.build.hashes import checker
from chartbuild.build.session import Session
from chartbuild.exceptions import BuildFailed


class SummaryReporter:
    """A doit reporter that records what ran instead of printing it."""

    def __init__(self, outstream: Any = None, options: Any = None) -> None:
        self.executed: list[str] = []
        self.failures: dict[str, str] = {}
        self.errors: list[str] = []
        self.changed: list[str] = []

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        pass

    def get_status(self, task: Any) -> None:
        pass

    def execute_task(self, task: Any) -> None:
        if task.actions:
            self.executed.append(task.name)

    def add_failure(self, task: Any, exception: Any) -> None:
        if isinstance(exception, UnmetDependency):
            return  # a task waiting on a failed one (all of them, when the export fails)
        self.failures[task.name] = exception.get_msg()

    def add_success(self, task: Any) -> None:
        if task.name == "export":
            self.changed = list(task.values.get("result", []))

    def skip_uptodate(self, task: Any) -> None:
        pass

    def skip_ignore(self, task: Any) -> None:
        pass

    def teardown_task(self, task: Any) -> None:
        pass

    def cleanup_error(self, exception: Any) -> None:
        self.errors.append(exception.get_msg())

    def runtime_error(self, msg: str) -> None:
        self.errors.append(msg)

    def complete_run(self) -> None:
        pass


@dataclass(frozen=True)
class BuildResult:
    """What one build did."""

    code: int
    changed: tuple[str, ...] = ()
    built: tuple[str, ...] = ()
    failures: dict[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    seconds: float = 0.0
    #: What happened before the build (it took over the state another builder saved).
    note: str = ""
    #: The newest change record of each source its export read (none if it did not run).
    read: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def charts(self) -> tuple[str, ...]:
        """The chart and number tasks that ran (``<generator>.<name>``)."""
        return tuple(t for t in self.built if names.is_chart_task(t))

    def summary(self) -> str:
        """One line: what changed, what was rebuilt, how long it took."""
        changed = ", ".join(self.changed) or "nothing new"
        charts = ", ".join(self.charts) or "no chart"
        line = f"{changed} -> rebuilt {charts} in {self.seconds:.2f} s"
        if self.note:
            line = f"{self.note}; {line}"
        if self.failures:
            line += f"; FAILED: {', '.join(self.failures)}"
        if self.errors or (self.code and not self.failures):
            line += f"; doit exited with {self.code}"
        return line

    def failure_report(self) -> str:
        return "\n".join([*(f"{n}: {m}" for n, m in self.failures.items()), *self.errors])


@functools.cache
def _entry_points(group: str) -> tuple[EntryPoint, ...]:
    return tuple(importlib.metadata.entry_points(group=group))


def _known_entry_points(*, group: str) -> tuple[EntryPoint, ...]:
    """doit's plugins (commands, reporters, backends), found once per process: doit looks
    them up on every run, which took about 50 ms of each rebuild of a long-lived builder."""
    return _entry_points(group)


def default_loader() -> TaskLoader2 | ModuleTaskLoader:
    """chartbuild's own task graph, as a project's ``dodo.py`` would declare it."""
    from chartbuild.build import tasks

    namespace: dict[str, Any] = {name: getattr(tasks, name) for name in tasks.__all__}
    namespace["DOIT_CONFIG"] = tasks.doit_config(interruptible=False)
    return ModuleTaskLoader(namespace)


class _ForSession(TaskLoader2):  # type: ignore[misc]
    """A project's task loader, with doit's reporter and file checker of this build."""

    def __init__(self, loader: Any, build: Session, reporter: Any) -> None:
        super().__init__()
        self.loader, self.build, self.reporter = loader, build, reporter
        self.cmd_options = loader.cmd_options  # its own (dodo.py's -f...)

    def setup(self, opt_values: Any) -> None:
        self.loader.setup(opt_values)

    def load_doit_config(self) -> dict[str, Any]:
        return {
            **self.loader.load_doit_config(),
            "reporter": self.reporter,
            "check_file_uptodate": checker(self.build.hashes),
        }

    def load_tasks(self, cmd: Any, pos_args: Any) -> Any:
        return self.loader.load_tasks(cmd, pos_args)


def build(
    task_names: Sequence[str] = (),
    *,
    loader: Any = None,
    loader_args: Sequence[str] = (),
    timeout: float | None = None,
    reset: bool = False,
    lead_session: Any = None,
) -> BuildResult:
    """Export and build ``task_names`` (default: everything) once, under the build locks
    (taking over first the build state another builder saved: see
    :mod:`chartbuild.build.handover`).

    ``reset=True`` rebuilds everything (the database was replaced, say). A leading
    builder passes its leader's session (``lead_session``): the database's build lock is
    taken on it (see :mod:`chartbuild.build.dblock`). Raises
    :class:`~chartbuild.exceptions.LockTimeout` if another build keeps the lock for more
    than ``timeout`` seconds (default ``CHARTBUILD_LOCK_TIMEOUT``).
    """
    doit.plugin.entry_points_impl = lambda: _known_entry_points
    reporter = SummaryReporter()
    started = time.perf_counter()
    wait = conf.lock_timeout() if timeout is None else timeout
    this = Session(
        one_off=False, lead_session=lead_session, reset=reset, plain=not task_names and not reset
    )
    this.lock(wait)
    try:
        with this.active():
            main = DoitMain(_ForSession(loader or default_loader(), this, reporter))
            code = main.run([*loader_args, "run", *task_names])
    finally:
        this.release()
    return BuildResult(
        code=code,
        changed=tuple(reporter.changed),
        built=tuple(reporter.executed),
        failures=dict(reporter.failures),
        errors=tuple(reporter.errors),
        seconds=time.perf_counter() - started,
        note=this.note,
        read=dict(this.exported or {}),
    )


def build_or_raise(task_names: Sequence[str] = ()) -> BuildResult:
    """:func:`build`, raising :class:`~chartbuild.exceptions.BuildFailed` if a task failed."""
    result = build(task_names)
    if not result.ok:
        raise BuildFailed(f"{result.summary()}\n{result.failure_report()}")
    return result
