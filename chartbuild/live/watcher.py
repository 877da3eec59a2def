"""The watcher behind ``doit auto``: build, then build again whenever something changes.

A build is started by any of:
- a wake-up: the hook's datagram (:mod:`chartbuild.live.wakeup`) after a commit in a process
  of this host, PostgreSQL's ``NOTIFY`` (:mod:`chartbuild.live.notify`) after a commit of any
  write to a watched table, from anywhere;
- a timer: a build starts at most ``CHARTBUILD_POLL_INTERVAL`` seconds after the previous
  one started, and its export step finds changes nothing woke it for;
- a change of a watched source file (generators, ``dodo.py``), seen by watchdog: the
  task graph is reloaded;
- on SQLite, a write to the database file (or its ``-wal`` or ``-journal``), seen by
  watchdog: a commit by any program of the host (the ``sqlite3`` shell, a cron job)
  starts a build at once. The builder's own writes, made while it builds, start none: a
  file event counts while no build runs when the files differ from what they were as
  the last build ended; one in the middle of a build, if the change log holds a record
  newer than the build's export read (``written_since``).

A build that cannot run (the database is down, say) is reported once; the next one that
runs says so, and catches up with everything that changed meanwhile.

Bursts are coalesced: after the first trigger the watcher waits until nothing has
happened for a quiet time (at most ``max_delay`` seconds) and then builds once. A commit
wakes it once or twice at the same moment (the hook and ``NOTIFY``), so it waits
``quiet`` (10 ms) and builds at once. More wake-ups than one commit gives, since the last
build began, are a burst: it waits for ``burst_quiet`` (50 ms) without one, so that a
burst of a second is built once or twice, not once per build's length. An editor saves a
file in several writes: a changed source waits ``burst_quiet`` too.
While charts fail, a poll only exports, and the failing charts run again when new
events come or every ``retry_failed`` seconds; the same failure is reported once.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Protocol

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from chartbuild.build.runner import BuildResult
from chartbuild.exceptions import ChartbuildError

logger = logging.getLogger(__name__)


#: The wake-ups one commit gives at most: the hook's datagram and ``NOTIFY``.
ONE_COMMIT = 2


class StopWatching(Exception):
    """Raised by a build function to end the watch (it is said, and :meth:`Watcher.run`
    returns): the builder is no longer the one that builds, say."""


class Waker(Protocol):
    """Something that wakes the watcher: it calls ``on_wake`` from a thread of its own."""

    def serve(self, on_wake: Callable[[], None]) -> None: ...

    def close(self) -> None: ...


#: Events that change a file. Opening and reading one (as every build does, to compare
#: its content) must not start another build.
WRITES: list[type[FileSystemEvent]] = [
    FileModifiedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    FileClosedEvent,
]


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if not isinstance(event, tuple(WRITES)):
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                self.watcher.notice(Path(str(path)))


class Outage:
    """Why builds cannot run, said once while the same reason lasts, and when it ends."""

    def __init__(self) -> None:
        self.reason = ""

    def still(self, reason: str) -> bool:
        """Note that a build could not run for ``reason``; whether that is news to say."""
        news = reason != self.reason
        self.reason = reason
        return news

    def over(self) -> str:
        """A build ran: the reason that has just ended ("" if builds were running)."""
        ended, self.reason = self.reason, ""
        return ended


class Watcher:
    """Runs ``build`` once, then again after every trigger, until :meth:`stop`."""

    def __init__(
        self,
        build: Callable[[], BuildResult],
        *,
        sources: Callable[[], Iterable[Path]],
        wakers: dict[str, Waker],
        poll_interval: float,
        out: IO[str],
        on_source_change: Callable[[set[Path]], None] = lambda paths: None,
        export: Callable[[], BuildResult] | None = None,
        data_files: Iterable[Path] = (),
        written_since: Callable[[BuildResult], bool] = lambda result: False,
        retry_failed: float = 30.0,
        quiet: float = 0.01,
        burst_quiet: float = 0.05,
        max_delay: float = 1.0,
    ) -> None:
        self.build = build
        self.export = export
        self.retry_failed = retry_failed
        self._last_build = 0.0
        self.sources = sources
        self.wakers = wakers
        self.poll_interval = poll_interval
        self.out = out
        self.on_source_change = on_source_change
        self.quiet = quiet
        self.burst_quiet = burst_quiet
        self._sources_changing = False
        self._wakes = 0
        self.max_delay = max_delay
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._reasons: set[str] = set()
        self._changed: set[Path] = set()
        self._last = 0.0
        self._watched: set[Path] = set()
        self._folders: set[Path] = set()
        self._last_report = ""
        self._outage = Outage()
        self._observer = Observer()
        self.builds = 0
        self._data = {p.absolute() for p in data_files}
        self._building = False
        self._written_meanwhile = False
        self._data_seen = self._data_stat()
        self.written_since = written_since

    def notice(self, path: Path) -> None:
        """Called by watchdog's thread for every file event in a watched folder."""
        path = path.absolute()
        if path in self._data:
            with self._lock:
                if self._building:
                    self._written_meanwhile = True  # its own writes, or another's
                    return
                written = self._data_stat() != self._data_seen
            if written:
                self._trigger("database written")
            return
        if path in self._watched:
            with self._lock:
                self._changed.add(path)
            self._trigger(f"{path.name} changed", source=True)

    def _data_stat(self) -> tuple[tuple[str, int, int], ...]:
        """The size and mtime of each database file there is."""
        found = []
        for path in sorted(self._data):
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path), stat.st_size, stat.st_mtime_ns))
        return tuple(found)

    def _trigger(self, reason: str, *, source: bool = False) -> None:
        with self._lock:
            self._reasons.add(reason)
            self._sources_changing = self._sources_changing or source
            self._wakes += 1
            self._last = time.monotonic()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> int:
        """Build, then watch until stopped. Returns 0."""
        self._observer.start()
        self._watch_sources()  # before the first build: edits made during it count
        self._watch_folders({p.parent for p in self._data})
        for reason, waker in self.wakers.items():
            waker.serve(functools.partial(self._trigger, reason))
        try:
            started = time.monotonic()
            self._build_and_report({"start"})
            while not self._stop.is_set():
                woken = self._wake.wait(max(0.0, started + self.poll_interval - time.monotonic()))
                if self._stop.is_set():
                    break
                if woken:
                    self._settle()
                with self._lock:
                    reasons, self._reasons = self._reasons or {"poll"}, set()
                    changed, self._changed = self._changed, set()
                    self._sources_changing = False
                    self._wakes = 0
                    self._wake.clear()
                if changed:
                    self.on_source_change(changed)
                started = time.monotonic()
                self._build_and_report(reasons)
        except StopWatching as exc:
            self._say(str(exc))
        finally:
            for waker in self.wakers.values():
                waker.close()
            self._observer.stop()  # daemon threads: stopping must not wait for them
        return 0

    def _settle(self) -> None:
        """Wait for a burst of triggers to end (or ``max_delay`` to pass)."""
        first = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                idle = time.monotonic() - self._last
                slow = self._sources_changing or self._wakes > ONE_COMMIT
                quiet = self.burst_quiet if slow else self.quiet
            if idle >= quiet or time.monotonic() - first >= self.max_delay:
                return
            time.sleep(min(quiet - idle, 0.05))

    def _build_and_report(self, reasons: set[str]) -> None:
        with self._lock:
            self._building, self._written_meanwhile = True, False
        result = None
        try:
            result = self._build_and_report_now(reasons)
        finally:
            with self._lock:  # what the build itself wrote to the database starts nothing
                self._building = False
                self._data_seen = self._data_stat()
                meanwhile = self._written_meanwhile
        if meanwhile and result is not None and self._written_after(result):
            self._trigger("database written")  # by another program, after the export read

    def _written_after(self, result: BuildResult) -> bool:
        try:
            return self.written_since(result)
        except Exception:  # the next poll finds it
            logger.exception("cannot tell whether the database was written during the build")
            return False

    def _build_and_report_now(self, reasons: set[str]) -> BuildResult | None:
        stamp = time.strftime("%H:%M:%S")
        why = ", ".join(sorted(reasons))
        try:
            failing = bool(self._last_report)
            recent = time.monotonic() - self._last_build < self.retry_failed
            if reasons == {"poll"} and failing and recent and self.export is not None:
                # Charts are failing: between retries, rerun them only for new events.
                probe = self.export()
                if probe.ok and not probe.changed:
                    return probe
            self._last_build = time.monotonic()
            result = self.build()
        except StopWatching:
            raise
        except ChartbuildError as exc:
            self._not_running(stamp, why, str(exc))
            return None
        except Exception as exc:  # keep watching: the next trigger may find it mended
            logger.exception("build failed")
            self._not_running(stamp, why, f"{type(exc).__name__}: {exc}")
            return None
        finally:
            self._watch_sources()
        self.builds += 1
        report = result.failure_report()
        if result.code and not result.charts and _export_failed(result):
            self._not_running(stamp, why, report)  # nothing could be exported: said once
            return result
        recovered = bool(self._outage.over())
        repeated = bool(report) and report == self._last_report and not result.charts
        self._last_report = report
        if repeated:
            return result  # the same failure as last time: said already
        if result.charts or report or result.code or recovered or "start" in reasons:
            back = "builds again: " if recovered else ""
            self._say(
                f"[{stamp}] {why}: {back}{result.summary()}" + (f"\n{report}" if report else "")
            )
        return result

    def _not_running(self, stamp: str, why: str, reason: str) -> None:
        """Report a build that could not run, unless it is the same reason as last time."""
        if self._outage.still(reason):
            self._say(f"[{stamp}] {why}: build not run (retrying at every trigger): {reason}")

    def _say(self, text: str) -> None:
        self.out.write(text.rstrip() + "\n")
        self.out.flush()

    def _watch_sources(self) -> None:
        try:
            self._watch(self.sources())
        except Exception:
            logger.exception("cannot list the generators' sources to watch")

    def _watch(self, sources: Iterable[Path]) -> None:
        """Watch the folders of ``sources`` (each once)."""
        wanted = {p.absolute() for p in sources}
        with self._lock:
            self._watched = wanted
        self._watch_folders({p.parent for p in wanted})

    def _watch_folders(self, folders: set[Path]) -> None:
        for folder in folders - self._folders:
            if folder.is_dir():
                self._observer.schedule(
                    _Handler(self), str(folder), recursive=False, event_filter=WRITES
                )
                self._folders.add(folder)


def _export_failed(result: BuildResult) -> bool:
    """Whether the build stopped at its export (the database is unreachable, say)."""
    return "export" in result.failures and not result.charts
