"""What ``doit`` prints while chartbuild builds: one line per chart, one summary line.

::

    [1/7] shop.total_revenue 12 ms
    [2/7] shop.revenue_per_month 48 ms
    [3/7] shop.top_products FAILED: chart shop.top_products (generator shop) failed: ...
    built 6, up to date 6, failed 1 (shop.top_products); slowest shop.revenue_per_month
    48 ms, shop.orders_by_status 41 ms, shop.total_revenue 12 ms; 0.62 s

The place's total is the number of charts and numbers this build runs, counted as the
export ends: those that read a model it found changed, and those whose generator's
source changed since doit recorded their build; it grows only if more run (a deleted
output). Only chart and number tasks get a line; the others are named only when they
fail. doit's other reporters (``--reporter json``, ``zero``, ...) work as usual.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from doit.exceptions import UnmetDependency

from chartbuild.build import interrupts, session
from chartbuild.export.exporter import stamp_path
from chartbuild.names import is_chart_task


class ProgressReporter:
    """A doit reporter: a line per chart or number built, then a summary."""

    desc = "chartbuild: a line per chart, then a summary"

    def __init__(self, outstream: Any, options: Any = None) -> None:
        self.outstream = outstream
        self.lock = threading.Lock()
        self.started_at = time.perf_counter()
        self.tasks: dict[str, Any] = {}
        self.selected: set[str] = set()
        self.starts: dict[str, float] = {}
        self.times: dict[str, float] = {}
        self.failed: list[str] = []
        self.up_to_date = 0
        self.planned = 0
        self.done = 0

    def write(self, text: str) -> None:
        with self.lock:
            self.outstream.write(text)
            self.outstream.flush()

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        self.tasks = dict(tasks)

    def get_status(self, task: Any) -> None:
        pass

    def execute_task(self, task: Any) -> None:
        with self.lock:
            self.starts[task.name] = time.perf_counter()

    def _finished(self, task: Any) -> tuple[str, float]:
        with self.lock:
            elapsed = time.perf_counter() - self.starts.pop(task.name, time.perf_counter())
            self.done += is_chart_task(task.name)
            self.planned = max(self.planned, self.done)
            return f"[{self.done}/{self.planned}]", elapsed

    def add_success(self, task: Any) -> None:
        if task.name == "export":
            self._plan(task.values.get("result") or [])
        if not is_chart_task(task.name):
            self.starts.pop(task.name, None)
            return
        place, elapsed = self._finished(task)
        self.times[task.name] = elapsed
        self.write(f"{place} {task.name} {elapsed * 1000:.0f} ms\n")

    def add_failure(self, task: Any, exception: Any) -> None:
        if interrupts.requested():
            return  # stopped: the summary names it among the interrupted
        if isinstance(exception, UnmetDependency):
            # waiting on a failed task (a dashboard on its chart, every chart on the export):
            # that task says why
            self.starts.pop(task.name, None)
            return
        message = exception.get_msg().strip()
        if not is_chart_task(task.name):
            self.write(f"{task.name} FAILED: {message}\n")
            return
        place, _ = self._finished(task)
        self.failed.append(task.name)
        first, _, rest = message.partition("\n")
        detail = "".join(f"    {line}\n" for line in rest.splitlines() if line.strip())
        self.write(f"{place} {task.name} FAILED: {first}\n{detail}")

    def _plan(self, changed: list[str]) -> None:
        """How many charts and numbers this build runs: those that read a model the export
        found changed, and those whose generator changed since doit recorded their build
        (or that it never recorded), as doit will find them."""
        stamps = {stamp_path(Path(), model).name for model in changed}
        state = session.current().state_db
        digests: dict[str, str | None] = {}

        def digest(path: str) -> str | None:
            if path not in digests:
                try:
                    digests[path] = session.current().hashes.md5(path)
                except OSError:
                    digests[path] = None
            return digests[path]

        planned = 0
        for name, task in self.tasks.items():
            if not is_chart_task(name):
                continue
            deps = [str(dep) for dep in task.file_dep]
            read_changed = any(Path(dep).name in stamps for dep in deps)
            if read_changed or (
                state is not None and _changed_since_recorded(state, name, deps, digest)
            ):
                planned += 1
        with self.lock:
            self.planned = max(self.planned, planned)

    def skip_uptodate(self, task: Any) -> None:
        if is_chart_task(task.name):
            self.up_to_date += 1

    def skip_ignore(self, task: Any) -> None:
        pass

    def teardown_task(self, task: Any) -> None:
        pass

    def cleanup_error(self, exception: Any) -> None:
        self.write(f"ERROR: {exception.get_msg()}\n")

    def runtime_error(self, msg: str) -> None:
        self.write(f"ERROR: {msg}\n")

    def complete_run(self) -> None:
        self.write(self.summary() + "\n")

    def summary(self) -> str:
        built = len(self.times)
        up_to_date = self.up_to_date + session.current().undeclared()
        line = f"built {built}, up to date {up_to_date}, failed {len(self.failed)}"
        if self.failed:
            line += f" ({', '.join(self.failed)})"
        if interrupts.requested():
            with self.lock:
                cut = sorted(name for name in self.starts if is_chart_task(name))
            line += f"; interrupted {len(cut)}"
            if cut:
                line += f" ({', '.join(cut)}: the next build makes them)"
        slowest = sorted(self.times.items(), key=lambda item: -item[1])[:3]
        if slowest:
            line += "; slowest " + ", ".join(f"{n} {t * 1000:.0f} ms" for n, t in slowest)
        return f"{line}; {time.perf_counter() - self.started_at:.2f} s"


def _changed_since_recorded(state: Any, task: str, deps: list[str], digest: Any) -> bool:
    """Whether doit will run ``task`` for a ``file_dep`` other than a stamp: none recorded,
    or one whose content differs from what doit recorded."""
    if state.get(task, "deps:") is None:
        return True  # never built (or its record was dropped)
    for dep in deps:
        if dep.endswith(".stamp"):
            continue
        recorded = state.get(task, dep)
        if not recorded or recorded[-1] != digest(dep):
            return True
    return False


#: doit's ``reporter`` in chartbuild's ``DOIT_CONFIG`` (a build run in this process gives
#: doit a reporter of its own: :mod:`chartbuild.build.runner`).
Reporter = ProgressReporter
