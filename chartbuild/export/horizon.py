"""Which record ids of a change table are settled: no transaction can still commit one below.

Ids are drawn when a row is inserted, not when its transaction commits. The exporter
counts records above a *watermark* and moves the watermark only over settled ids, so a
record that commits after a higher one has been exported is still counted.

``mark()`` is taken right after an export's query and stored with its checkpoint;
``busy()`` is taken before the next export's query. A checkpoint is settled when no name
in its mark is still busy. ``busy()`` returning ``None`` means nothing ever settles,
which keeps the exporter correct on any backend.

- PostgreSQL: a transaction takes a ``RowExclusiveLock`` on the table before it draws an
  id from the sequence and keeps it until it ends, so the virtual transaction ids holding
  that lock (``pg_locks``) name every transaction that may still commit a lower id, in
  autocommit mode too. A transaction that holds the watermark for over a minute is named
  in a warning: every export rescans what came after it.
- SQLite: writers are serialised and commit in id order; what one export saw is settled.
- Other backends: nothing settles.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import connections

logger = logging.getLogger(__name__)

#: Seconds a transaction may hold the watermark before it is named in a warning.
HELD_TOO_LONG = 60.0

#: Transactions named in a warning already, so each is named once per process.
_named: set[str] = set()


class Horizon:
    """Nothing is ever settled: the watermark stays at 0 (correct, never fast)."""

    def __init__(self, using: str, table: str) -> None:
        self.using = using
        self.table = table

    def busy(self) -> set[str] | None:
        return None

    def mark(self) -> list[str]:
        return []

    def warn_held(self, names: set[str], since: float) -> None:
        """Called with the busy names of a checkpoint taken at ``since`` (a timestamp)."""

    @staticmethod
    def for_connection(using: str, table: str) -> Horizon:
        vendor = connections[using].vendor
        if vendor == "postgresql":
            return PostgresHorizon(using, table)
        if vendor == "sqlite":
            return SqliteHorizon(using, table)
        return Horizon(using, table)


class SqliteHorizon(Horizon):
    """SQLite has a single writer: every id an export saw is settled."""

    def busy(self) -> set[str]:
        return set()


class PostgresHorizon(Horizon):
    """The transactions that may be inserting into the table (``pg_locks``)."""

    def busy(self) -> set[str] | None:
        marked = self._locks()
        return None if marked is None else set(marked)

    def mark(self) -> list[str]:
        return self._locks() or []

    def _locks(self) -> list[str] | None:
        """The lockers of the table, or ``None`` if the table cannot be found (nothing is
        then settled: failing open would skip late commits)."""
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.oid, ARRAY(SELECT DISTINCT l.virtualtransaction FROM pg_locks l"
                " WHERE l.locktype = 'relation' AND l.relation = t.oid"
                " AND l.mode = 'RowExclusiveLock' AND l.pid IS DISTINCT FROM pg_backend_pid())"
                " FROM (SELECT to_regclass(%s)::oid AS oid) AS t",
                [connection.ops.quote_name(self.table)],
            )
            oid, lockers = cursor.fetchone()
        return None if oid is None else sorted(lockers)

    def warn_held(self, names: set[str], since: float) -> None:
        held_for = time.time() - since
        fresh = names - _named
        if held_for < HELD_TOO_LONG or not fresh:
            return
        _named.update(fresh)
        for described in self._describe(fresh):
            logger.warning(
                "a transaction (%s) has kept changes to %s unsettled for %d s: until it ends, "
                "every export reads the changes made since it began. Commit or roll it back.",
                described,
                self.table,
                held_for,
            )

    def _describe(self, names: set[str]) -> list[str]:
        with connections[self.using].cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT a.pid, a.application_name, a.state, a.xact_start,"
                " left(a.query, 80) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.virtualtransaction = ANY(%s)",
                [sorted(names)],
            )
            rows: list[Any] = cursor.fetchall()
        return [
            f"pid {pid}, application {app or '?'}, {state}"
            + (f", open since {start:%H:%M:%S}" if start else "")
            + f", last query {query!r}"
            for pid, app, state, start, query in rows
        ] or [", ".join(sorted(names))]
