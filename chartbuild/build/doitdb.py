"""doit's dependency database, as chartbuild uses it: sqlite3, and never a dead end.

doit keeps what it knows of each task (the state of its ``file_dep``, its values) in one
file, written when a run ends. A crash, a full disk or a file copied from elsewhere can
leave that file unreadable, and doit's own ``sqlite3`` backend then stops every run with
a traceback. :class:`DoitDB` moves such a file aside (``<name>.unreadable``), says so
once, and starts empty: every task is out of date, so the run rebuilds everything.

It is registered as doit backend ``chartbuild`` (entry point group ``doit.BACKEND``) and
chosen by :func:`chartbuild.build.tasks.doit_config`.

doit opens it before the build takes its lock (a one-off ``doit`` takes it in its export
task), and a build that waited meanwhile must not go on what it read then: the file is
given to the build's session (:attr:`Session.state_db
<chartbuild.build.session.Session.state_db>`), which has it read again once the lock is
held (:meth:`DoitDB.reread`). So a build that waited for another rebuilds nothing that
one built. A build that takes over another builder's saved state records the charts it
took over here (:meth:`DoitDB.record_built`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from typing import Any

from doit.dependency import DatabaseException, SqliteDB
from doit.exceptions import InvalidCommand

from chartbuild import files
from chartbuild.build import session
from chartbuild.exceptions import ChartbuildError

logger = logging.getLogger(__name__)

#: SQLite's own words for a file that is not (or no longer) a database.
CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


def unreadable(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is damaged, not merely busy, full or missing."""
    for error in (exc, exc.__context__, exc.__cause__):
        if isinstance(error, sqlite3.DatabaseError):
            return getattr(error, "sqlite_errorname", "") in CORRUPT
    return isinstance(exc, ValueError)  # a task's stored state is not JSON


class StateNotSaved(ChartbuildError, InvalidCommand):
    """doit's state could not be written: this run's work is redone by the next one.

    Also one of doit's "user errors", so that doit says it in one line (``ERROR: ...``)
    and exits with 3, instead of printing a traceback.
    """


class DoitDB(SqliteDB):  # type: ignore[misc]
    """doit's ``sqlite3`` backend that starts afresh, with one warning, from an unreadable file."""

    desc = "sqlite3, starting afresh (and rebuilding everything) from an unreadable file"
    _stored: dict[str, Any] | None = None

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        self._requests = threading.Lock()
        self._reread = False
        self._built: dict[str, dict[str, Any]] = {}
        try:
            super().__init__(name, codec, module_name=module_name)
        except (DatabaseException, sqlite3.DatabaseError) as exc:
            if not unreadable(exc):
                raise
            self.codec = codec
            self._cache: dict[str, Any] = {}
            self._dirty: set[str] = set()
            self._start_afresh(exc)
        session.current().state_db = self

    # -- what other threads ask for ---------------------------------------------------
    # doit reads and writes this state in its main thread only (its sqlite3 connection
    # belongs to that thread), while the export task, which takes the build locks, may
    # run in a worker thread: it leaves its requests here, and the main thread carries
    # them out at its next question (or when it saves).

    def reread(self) -> None:
        """Forget what was read of the file (not what this run has changed): the next
        question reads it again, as another build may have written it meanwhile."""
        with self._requests:
            self._reread = True

    def record_built(self, states: dict[str, dict[str, Any]]) -> None:
        """Record tasks as built: ``states`` holds, by task, the values to store (doit's
        ``reset-dep``: its file_dep states, checker and list of deps)."""
        with self._requests:
            self._built.update(states)

    def _carry_out(self) -> None:
        with self._requests:
            reread, self._reread = self._reread, False
            built, self._built = self._built, {}
        if reread:
            self._stored = None
            self._cache = {task: data for task, data in self._cache.items() if task in self._dirty}
        for task, values in built.items():
            data = dict(self._cache[task] if task in self._cache else self._get_task_data(task))
            data.update(values)
            self._cache[task] = data
            self._dirty.add(task)

    def get(self, task_id: str, dependency: str) -> Any:
        self._carry_out()
        return super().get(task_id, dependency)

    def _start_afresh(self, exc: BaseException) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        aside = f"{self.name}.unreadable"
        logger.warning(
            "doit's dependency file %s is unreadable (%s); it was moved to %s and every "
            "task is rebuilt",
            self.name,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            aside,
        )
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(self.name + suffix):
                os.replace(self.name + suffix, aside + suffix)
        self._conn = self._sqlite3(self.name)
        self._stored = {}

    #: Tasks whose state is read one at a time before every task's is read at once: a
    #: build of a few tasks (:mod:`chartbuild.build.plan`) reads only theirs.
    ONE_BY_ONE = 50
    _read_alone = 0

    def _get_task_data(self, task_id: str) -> Any:
        """A task's stored state: the first few one by one, then every task's at once."""
        stored = getattr(self, "_stored", None)
        if stored is None and self._read_alone < self.ONE_BY_ONE:
            self._read_alone += 1
            try:
                return super()._get_task_data(task_id)
            except (sqlite3.DatabaseError, ValueError) as exc:
                if not unreadable(exc):
                    raise
                self._start_afresh(exc)
                return {}
        if stored is None:
            try:
                stored = {
                    row["task_id"]: row["task_data"]
                    for row in self._conn.execute("SELECT task_id, task_data FROM doit")
                }
            except (sqlite3.DatabaseError, ValueError) as exc:
                if not unreadable(exc):
                    raise
                self._start_afresh(exc)
                stored = {}
            self._stored = stored
        return stored.get(task_id, {})

    def in_(self, task_id: str) -> bool:
        self._carry_out()
        return task_id in self._cache or bool(self._get_task_data(task_id))

    def remove(self, task_id: str) -> None:
        super().remove(task_id)
        if self._stored is not None:
            self._stored.pop(task_id, None)

    def remove_all(self) -> None:
        super().remove_all()
        self._stored = {}

    def dump(self) -> None:
        try:
            self._carry_out()
            files.flush()  # what doit is about to record as built is on the disk first
            try:
                super().dump()
            except (sqlite3.DatabaseError, ValueError) as exc:
                if not unreadable(exc):
                    raise
                self._start_afresh(exc)
                super().dump()
        except (sqlite3.Error, OSError) as exc:
            raise StateNotSaved(
                f"chartbuild: cannot save doit's state in {self.name}: {exc}. Free some disk "
                "space or fix the state directory's permissions; the next build redoes what "
                "this one did."
            ) from exc
        session.current().saved(self.name)
