"""Change capture: every committed write to a table a chart reads leaves a record.

django-mqueue sees ``save()`` and ``delete()`` only. Database triggers see every write,
whatever issued it (``update()``, ``bulk_create()``, ``bulk_update()``, raw SQL, other
programs), and record it in the same transaction, so a rolled-back write records nothing.
The records go to :class:`~chartbuild.models.Change`, an append-only log: concurrent
writers of one table are never serialised by a shared counter row. The exporter counts
the log like mqueue's events (gap-safe) and deletes what it has settled.

One :class:`Capture` per database backend:

- PostgreSQL (:class:`PostgresTriggers`): statement-level triggers, one record per
  statement that wrote a row however many rows it wrote, and (``CHARTBUILD_NOTIFY``) a
  ``NOTIFY chartbuild`` that PostgreSQL delivers at commit (``doit auto`` listens). The
  functions are ``SECURITY DEFINER`` with a fixed ``search_path``: a program connecting as
  another role, or with another search path, still writes the record. Not seen: writes
  with ``session_replication_role = replica``, and statements that name a partition or
  an inheritance child of a watched table directly.
- SQLite (:class:`SqliteTriggers`): row-level triggers (SQLite has no others). A row
  adds one to the newest record of the log when that is already its table's and its
  kind's: a 100,000-row ``UPDATE`` leaves one record of 100,000 rows. The exporter adds
  an empty *marker* record when it has read the log, so a write after that read always
  records again.
- Other backends, or ``CHARTBUILD_CAPTURE = "orm"`` (:class:`OrmCapture`): no triggers;
  an execute wrapper on Django's connection records the ORM's and raw SQL's writes to
  watched tables (:class:`Recorder`). Other programs' writes are not seen (system check
  ``chartbuild.W002``).

``manage.py migrate`` installs, updates and removes the triggers after migrating
(:func:`on_post_migrate`), following the models the generators read;
``manage.py chartbuild capture`` lists them; system check ``chartbuild.E010`` names a
watched table whose trigger is missing or outdated. Only chartbuild's own names are
touched: ``chartbuild_v<N>...`` triggers and ``chartbuild_{before,capture}_v<N>``
functions.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connections, transaction

from chartbuild import conf
from chartbuild.declare import catalog, tables
from chartbuild.models import Change

logger = logging.getLogger(__name__)

LOG_TABLE = Change._meta.db_table
#: The ``NOTIFY`` channel of the PostgreSQL triggers.
CHANNEL = "chartbuild"
#: Changes when the trigger definitions change: installed triggers of another version
#: are reported as outdated and replaced by ``migrate``.
VERSION = "v2"

INSTALLED = "installed"
MISSING = "missing"
OUTDATED = "outdated"
NOT_A_TABLE = "not a table"
NO_SUCH_TABLE = "no such table"
UNWATCHED = "unwatched"
ORM = "captured by Django only"


#: ``{table: the columns an UPDATE must set for a chart to care}``; a table absent, or
#: None: every column (see :func:`watched_columns`).
Columns = Mapping[str, frozenset[str] | None]


@dataclass
class SyncReport:
    """What :meth:`Capture.sync` changed."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("added on", self.added),
                ("updated on", self.updated),
                ("removed from", self.removed),
            )
            if names
        ]
        return "chartbuild capture triggers: " + "; ".join(parts)


class Capture:
    """How writes are captured on one database: the base class captures nothing itself."""

    #: Whether writes by other programs are seen.
    triggers = False

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def status(self, watched: Iterable[str], columns: Columns | None = None) -> dict[str, str]:
        """State of every watched table, and of unwatched tables that still have triggers;
        ``columns``: the columns whose update concerns a chart, by table (absent: all)."""
        return dict.fromkeys(watched, ORM)

    def sync(
        self,
        watched: Iterable[str],
        columns: Columns | None = None,
        *,
        remove_unwatched: bool = True,
    ) -> SyncReport:
        """Install or update the capture of ``watched`` tables; remove it elsewhere."""
        return SyncReport()

    def remove(self) -> list[str]:
        """Remove every chartbuild trigger; returns the tables that had some."""
        return []

    def log_exists(self) -> bool:
        """Whether the change log exists with the columns this version's triggers write
        (a database migrated back before them gets no triggers: its writes would fail)."""
        introspection = self.connection.introspection
        with self.connection.cursor() as cursor:
            if LOG_TABLE not in introspection.table_names(cursor):
                return False
            columns = {c.name for c in introspection.get_table_description(cursor, LOG_TABLE)}
        return {"operation", "rows", "xact", "program", "context"} <= columns

    def quote(self, name: str) -> str:
        return str(self.connection.ops.quote_name(name))


def literal(value: str) -> str:
    """``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


#: Rows this transaction has inserted, updated and deleted in the trigger's table so far.
_ROWS_WRITTEN = (
    "pg_stat_get_xact_tuples_inserted(TG_RELID) + pg_stat_get_xact_tuples_updated(TG_RELID)"
    " + pg_stat_get_xact_tuples_deleted(TG_RELID)"
)
#: Where the count before a statement is kept: transaction-local, per table, event and
#: nesting (a statement with a data-modifying ``WITH`` fires one pair per event).
_BEFORE = "'chartbuild.r' || TG_RELID || '_' || TG_OP || '_' || pg_trigger_depth()"


class PostgresTriggers(Capture):
    """Statement-level triggers: one record per statement that wrote a row.

    A statement that writes no row (``UPDATE ... WHERE false``, the ``SET NULL`` of a
    ``delete()`` with nothing to update) fires statement triggers too. To record only
    statements that wrote, a ``BEFORE`` trigger keeps the number of rows the transaction
    has written to the table so far (``pg_stat_get_xact_tuples_*``, kept in a
    transaction-local setting), and the ``AFTER`` trigger records when it went up. That
    costs two function calls per statement, whatever its number of rows. Without
    ``track_counts``, on partitioned tables and on ``TRUNCATE``, every statement records.
    """

    triggers = True
    before = f"chartbuild_before_{VERSION}"
    capture = f"chartbuild_capture_{VERSION}"
    #: chartbuild's trigger and function names, of any version.
    TRIGGER = re.compile(r"^chartbuild_v\d+(?:_before|_truncate|_update)?$")
    FUNCTION = re.compile(r"^chartbuild_(?:before|capture)_v\d+$")

    def functions(self, schema: str) -> dict[str, str]:
        """``{function name: body}`` of this version, writing to the log in ``schema``.

        A record says the statement's kind, the rows it wrote (the transaction's count
        after it, less the count before), its transaction, program and time, and who
        wrote when the writer said so (:mod:`chartbuild.capture.context`)."""
        log = f"{self.quote(schema)}.{self.quote(LOG_TABLE)}"
        notify = f"    PERFORM pg_notify({literal(CHANNEL)}, TG_TABLE_NAME);\n"
        return {
            self.before: (
                "\nBEGIN\n"
                f"    PERFORM set_config({_BEFORE}, ({_ROWS_WRITTEN})::text, true);\n"
                "    RETURN NULL;\n"
                "END\n"
            ),
            self.capture: (
                "\nDECLARE\n"
                "    written bigint;\n"
                "    before bigint;\n"
                "BEGIN\n"
                "    IF TG_OP <> 'TRUNCATE' AND TG_NARGS = 0"
                " AND current_setting('track_counts')::boolean THEN\n"
                f"        written := {_ROWS_WRITTEN};\n"
                "        before := coalesce("
                f"nullif(current_setting({_BEFORE}, true), '')::bigint, -1);\n"
                "        IF written <= before THEN\n"
                "            RETURN NULL;\n"
                "        END IF;\n"
                "    END IF;\n"
                f"    INSERT INTO {log} (table_name, operation, rows, xact, program, context, at)"
                " VALUES (TG_TABLE_NAME, TG_OP, CASE WHEN before >= 0 THEN written - before END,"
                " txid_current(), left(current_setting('application_name'), 64),"
                " left(coalesce(current_setting('chartbuild.context', true), ''), 200),"
                " clock_timestamp());\n"
                f"{notify if conf.notify() else ''}"
                "    RETURN NULL;\n"
                "END\n"
            ),
        }

    def _triggers(
        self, relkind: str, columns: frozenset[str] | None = None
    ) -> dict[str, tuple[str, str, str, str]]:
        """``{name: (timing and events, function, arguments, columns)}`` a table of
        ``relkind`` gets; with ``columns``, an ``UPDATE`` records only when it sets one of
        them (``UPDATE OF``), and none when there are none."""
        if relkind == "p":  # rows are counted on the partitions: record every statement
            return {
                f"chartbuild_{VERSION}": (
                    "AFTER INSERT OR UPDATE OR DELETE",
                    self.capture,
                    "'1'",
                    "",
                ),
                f"chartbuild_{VERSION}_truncate": ("AFTER TRUNCATE", self.capture, "", ""),
            }
        before = ("BEFORE INSERT OR UPDATE OR DELETE", self.before, "", "")
        truncate = ("AFTER TRUNCATE", self.capture, "", "")
        if columns is None:
            return {
                f"chartbuild_{VERSION}_before": before,
                f"chartbuild_{VERSION}": ("AFTER INSERT OR UPDATE OR DELETE", self.capture, "", ""),
                f"chartbuild_{VERSION}_truncate": truncate,
            }
        found = {
            f"chartbuild_{VERSION}_before": before,
            f"chartbuild_{VERSION}": ("AFTER INSERT OR DELETE", self.capture, "", ""),
            f"chartbuild_{VERSION}_truncate": truncate,
        }
        if columns:
            of = ", ".join(self.quote(c) for c in sorted(columns))
            found[f"chartbuild_{VERSION}_update"] = (
                f"AFTER UPDATE OF {of}",
                self.capture,
                "",
                ",".join(sorted(columns)),
            )
        return found

    def _schema(self, cursor: Any) -> str | None:
        """The schema of the change log (the trigger functions go there too)."""
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.oid = to_regclass(%s)",
            [self.quote(LOG_TABLE)],
        )
        row = cursor.fetchone()
        return str(row[0]) if row else None

    def _kinds(self, cursor: Any, names: Iterable[str]) -> dict[str, str]:
        """``{table: relkind}`` of the tables that exist (``r`` or ``p`` is a table)."""
        names = sorted(names)
        if not names:
            return {}
        cursor.execute(
            "SELECT t, c.relkind FROM unnest(%s::text[]) AS t"
            " JOIN pg_class c ON c.oid = to_regclass(quote_ident(t))",
            [names],
        )
        return dict(cursor.fetchall())

    def _installed(self, cursor: Any) -> dict[str, set[tuple[str, bool, str]]]:
        """``{table: {(trigger, enabled, current function or "")}}`` of chartbuild's triggers."""
        cursor.execute(
            "SELECT c.relname, t.tgname, t.tgenabled IN ('O', 'A'), p.proname, p.prosrc,"
            " t.tgnargs, coalesce((SELECT string_agg(a.attname, ',' ORDER BY a.attname)"
            " FROM pg_attribute a WHERE a.attrelid = t.tgrelid"
            " AND a.attnum = ANY (t.tgattr::int2[])), '')"
            " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE NOT t.tgisinternal AND t.tgname LIKE 'chartbuild%'"
            " AND pg_table_is_visible(c.oid)"
        )
        rows = [row for row in cursor.fetchall() if self.TRIGGER.match(row[1])]
        schema = self._schema(cursor) if rows else None
        bodies = self.functions(schema) if schema else {}
        found: dict[str, set[tuple[str, bool, str]]] = {}
        for table, name, enabled, function, source, nargs, columns in rows:
            current = function if bodies.get(function) == source else ""
            state = f"{current}/{nargs}/{columns}"
            found.setdefault(table, set()).add((name, bool(enabled), state))
        return found

    def _state(
        self,
        relkind: str,
        triggers: set[tuple[str, bool, str]],
        columns: frozenset[str] | None = None,
    ) -> str:
        if not triggers:
            return MISSING
        expected = {
            (name, True, f"{function}/{1 if args else 0}/{of}")
            for name, (_, function, args, of) in self._triggers(relkind, columns).items()
        }
        return INSTALLED if triggers == expected else OUTDATED

    @staticmethod
    def _table_state(kind: str | None) -> str | None:
        if kind is None:
            return NO_SUCH_TABLE
        return None if kind in ("r", "p") else NOT_A_TABLE

    def status(self, watched: Iterable[str], columns: Columns | None = None) -> dict[str, str]:
        watched, columns = set(watched), columns or {}
        with self.connection.cursor() as cursor:
            installed = self._installed(cursor)
            kinds = self._kinds(cursor, watched)
        found = {
            table: self._table_state(kinds.get(table))
            or self._state(kinds[table], installed.get(table, set()), columns.get(table))
            for table in watched
        }
        found.update({table: UNWATCHED for table in installed if table not in watched})
        return found

    def sync(
        self,
        watched: Iterable[str],
        columns: Columns | None = None,
        *,
        remove_unwatched: bool = True,
    ) -> SyncReport:
        report = SyncReport()
        watched, columns = set(watched), columns or {}
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            schema = self._schema(cursor)
            if schema is None:
                raise DatabaseError(f"chartbuild's table {LOG_TABLE} does not exist: run migrate")
            installed = self._installed(cursor)
            kinds = self._kinds(cursor, watched)
            for name, body in self.functions(schema).items():
                function = f"{self.quote(schema)}.{self.quote(name)}"
                cursor.execute(
                    "SELECT prosrc, prosecdef FROM pg_proc WHERE oid = to_regproc(%s)", [function]
                )
                if cursor.fetchone() != (body, True):
                    cursor.execute(
                        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger"
                        " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
                        f" AS $chartbuild${body}$chartbuild$"
                    )
            for table in sorted(watched):
                problem = self._table_state(kinds.get(table))
                if problem:
                    report.skipped[table] = problem
                    continue
                triggers = installed.get(table, set())
                of = columns.get(table)
                if self._state(kinds[table], triggers, of) == INSTALLED:
                    continue
                self._drop(cursor, table, triggers)
                for name, (when, function, args, _) in self._triggers(kinds[table], of).items():
                    cursor.execute(
                        f"CREATE TRIGGER {self.quote(name)} {when} ON {self.quote(table)}"
                        f" FOR EACH STATEMENT EXECUTE FUNCTION"
                        f" {self.quote(schema)}.{self.quote(function)}({args})"
                    )
                (report.updated if triggers else report.added).append(table)
            if remove_unwatched:
                for table in sorted(set(installed) - watched):
                    self._drop(cursor, table, installed[table])
                    report.removed.append(table)
            self._drop_old_functions(cursor, keep={self.before, self.capture})
        return report

    def _drop(self, cursor: Any, table: str, triggers: Iterable[tuple[str, bool, str]]) -> None:
        for name, _, _ in triggers:
            cursor.execute(f"DROP TRIGGER IF EXISTS {self.quote(name)} ON {self.quote(table)}")

    def _drop_old_functions(self, cursor: Any, keep: set[str]) -> None:
        """Drop chartbuild's trigger functions of other versions that no trigger uses."""
        cursor.execute(
            "SELECT p.oid::regprocedure::text, p.proname FROM pg_proc p"
            " WHERE p.proname LIKE 'chartbuild%' AND p.prorettype = 'trigger'::regtype"
            " AND pg_function_is_visible(p.oid)"
            " AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgfoid = p.oid)"
        )
        for signature, name in cursor.fetchall():
            if self.FUNCTION.match(name) and name not in keep:
                cursor.execute(f"DROP FUNCTION IF EXISTS {signature}")

    def remove(self) -> list[str]:
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            installed = self._installed(cursor)
            for table, triggers in sorted(installed.items()):
                self._drop(cursor, table, triggers)
            self._drop_old_functions(cursor, keep=set())
        return sorted(installed)


class SqliteTriggers(Capture):
    """Row-level triggers, one record per table between two reads of the log."""

    triggers = True
    operations = ("insert", "update", "delete")
    TRIGGER = re.compile(r"^chartbuild_v\d+_.+_(?:insert|update|delete)$")

    def _name(self, table: str, operation: str) -> str:
        return f"chartbuild_{VERSION}_{table}_{operation}"

    def definitions(self, table: str, columns: frozenset[str] | None = None) -> dict[str, str]:
        """``{trigger name: CREATE TRIGGER statement}`` for one table.

        Two per kind of write: a row adds one to the newest record when that is its
        table's and its kind's (a 100,000-row ``UPDATE`` leaves one record of 100,000
        rows), else starts a record. Each tests the newest record in its ``WHEN``. SQLite
        runs a table's triggers newest first: the counting one, made second, looks before
        the starting one has added the row's record (a test holds it to that)."""
        log = self.quote(LOG_TABLE)
        name = literal(table)
        found = {}
        for operation in self.operations:
            event = operation.upper()
            if operation == "update" and columns is not None:
                if not columns:
                    continue  # no chart reads a column an UPDATE can set
                event = "UPDATE OF " + ", ".join(self.quote(c) for c in sorted(columns))
            kind = literal(operation.upper())
            newest = f"(SELECT table_name || ' ' || operation FROM {log} ORDER BY id DESC LIMIT 1)"
            same = literal(f"{table} {operation.upper()}")
            counting = self._name(table, f"count_{operation}")
            starting = self._name(table, operation)
            found[starting] = (
                f"CREATE TRIGGER {self.quote(starting)} AFTER {event}"
                f" ON {self.quote(table)} WHEN {newest} IS NOT {same} BEGIN"
                f" INSERT INTO {log} (table_name, operation, rows, at) VALUES ({name}, {kind}, 1,"
                " strftime('%Y-%m-%d %H:%M:%f', 'now')); END"
            )
            found[counting] = (
                f"CREATE TRIGGER {self.quote(counting)} AFTER {event}"
                f" ON {self.quote(table)} WHEN {newest} IS {same} BEGIN"
                f" UPDATE {log} SET rows = rows + 1 WHERE id = (SELECT MAX(id) FROM {log}); END"
            )
        return found

    def _installed(self, cursor: Any) -> dict[str, dict[str, str]]:
        cursor.execute(
            "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger'"
            " AND substr(name, 1, 10) = 'chartbuild'"
        )
        found: dict[str, dict[str, str]] = {}
        for table, name, sql in cursor.fetchall():
            if self.TRIGGER.match(name):
                found.setdefault(table, {})[name] = sql
        return found

    def _kinds(self, cursor: Any) -> dict[str, str]:
        cursor.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')")
        return dict(cursor.fetchall())

    def _state(
        self, table: str, triggers: dict[str, str], columns: frozenset[str] | None = None
    ) -> str:
        if not triggers:
            return MISSING
        return INSTALLED if triggers == self.definitions(table, columns) else OUTDATED

    @staticmethod
    def _table_state(kind: str | None) -> str | None:
        if kind is None:
            return NO_SUCH_TABLE
        return None if kind == "table" else NOT_A_TABLE

    def status(self, watched: Iterable[str], columns: Columns | None = None) -> dict[str, str]:
        watched, columns = set(watched), columns or {}
        with self.connection.cursor() as cursor:
            installed = self._installed(cursor)
            kinds = self._kinds(cursor)
        found = {
            table: self._table_state(kinds.get(table))
            or self._state(table, installed.get(table, {}), columns.get(table))
            for table in watched
        }
        found.update({table: UNWATCHED for table in installed if table not in watched})
        return found

    def sync(
        self,
        watched: Iterable[str],
        columns: Columns | None = None,
        *,
        remove_unwatched: bool = True,
    ) -> SyncReport:
        report = SyncReport()
        watched, columns = set(watched), columns or {}
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            installed = self._installed(cursor)
            kinds = self._kinds(cursor)
            if LOG_TABLE not in kinds:
                raise DatabaseError(f"chartbuild's table {LOG_TABLE} does not exist: run migrate")
            for table in sorted(watched):
                problem = self._table_state(kinds.get(table))
                if problem:
                    report.skipped[table] = problem
                    continue
                triggers = installed.get(table, {})
                if self._state(table, triggers, columns.get(table)) == INSTALLED:
                    continue
                for name in triggers:
                    cursor.execute(f"DROP TRIGGER IF EXISTS {self.quote(name)}")
                for sql in self.definitions(table, columns.get(table)).values():
                    cursor.execute(sql)
                (report.updated if triggers else report.added).append(table)
            if remove_unwatched:
                for table in sorted(set(installed) - watched):
                    for name in installed[table]:
                        cursor.execute(f"DROP TRIGGER IF EXISTS {self.quote(name)}")
                    report.removed.append(table)
        return report

    def remove(self) -> list[str]:
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            installed = self._installed(cursor)
            for triggers in installed.values():
                for name in triggers:
                    cursor.execute(f"DROP TRIGGER IF EXISTS {self.quote(name)}")
        return sorted(installed)


class OrmCapture(Capture):
    """Records writes made through Django's connection (no triggers on this database)."""

    def install_wrapper(self) -> None:
        """Record this connection's writes to watched tables from now on."""
        wrappers = self.connection.execute_wrappers
        if not any(isinstance(w, Recorder) for w in wrappers):
            wrappers.insert(0, Recorder(watched_tables_cached))  # outlives any `with` wrapper

    def sync(
        self,
        watched: Iterable[str],
        columns: Columns | None = None,
        *,
        remove_unwatched: bool = True,
    ) -> SyncReport:
        """Triggers left from ``"auto"`` go: the ORM records those writes now."""
        leftover = triggers_of(self.connection)
        return SyncReport(removed=leftover.remove()) if leftover else SyncReport()


#: The statements a :class:`Recorder` looks at, and the table they write.
WRITE = re.compile(
    r"""^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)
        \s+[`"\[]?([\w$]+)""",
    re.IGNORECASE | re.VERBOSE,
)
RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
#: The columns an ``UPDATE ... SET "a" = ..., "b" = ...`` sets, as Django writes it.
SET_COLUMNS = re.compile(r'(?:^|,)\s*[`"\[]?(\w+)[`"\]]?\s*=')


class Recorder:
    """An execute wrapper: a write to a watched table adds a change record beside it.

    Inside a transaction the record joins it (and is dropped on rollback). In autocommit
    mode the record follows the statement, in a transaction of its own (a statement with
    ``RETURNING`` cannot commit before its rows are read), so a crash between the two
    loses it: the database triggers of PostgreSQL and SQLite have no such window. A
    failure to record is logged, never raised into the write.
    """

    def __init__(self, watched: Callable[[], frozenset[str]]) -> None:
        self.watched = watched
        self._failed: set[str] = set()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        match = WRITE.match(sql)
        table = match.group(1).lower() if match else ""
        try:
            watched = table and table in self.watched()
        except Exception:
            logger.exception("chartbuild cannot tell which tables charts read")
            watched = False
        if watched and sql.lstrip()[:6].upper() == "UPDATE":
            written = SET_COLUMNS.findall(sql.split(" WHERE ", 1)[0].partition(" SET ")[2])
            watched = not written or concerns(table, written)
        result = execute(sql, params, many, context)
        # rowcount says 0 for a statement with RETURNING until its rows are read
        rows = context["cursor"].rowcount
        if watched and (rows != 0 or RETURNING.search(sql)):
            operation = sql.split(None, 1)[0].upper().replace("REPLACE", "INSERT")
            self._record(context["connection"], table, operation, rows if rows > 0 else None)
        return result

    def _record(self, connection: Any, table: str, operation: str, rows: int | None) -> None:
        try:
            savepoint = connection.in_atomic_block and connection.vendor == "postgresql"
            block = transaction.atomic(using=connection.alias) if savepoint else nullcontext()
            with block, connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {LOG_TABLE} (table_name, operation, rows) VALUES (%s, %s, %s)",
                    [table, operation, rows],
                )
        except DatabaseError as exc:
            if str(exc) not in self._failed:
                self._failed.add(str(exc))
                logger.warning(
                    "chartbuild could not record a write to %s (%s): run `manage.py migrate`",
                    table,
                    exc,
                )


def triggers_of(connection: Any) -> PostgresTriggers | SqliteTriggers | None:
    """The trigger capture this database supports, whatever ``CHARTBUILD_CAPTURE`` says."""
    if connection.vendor == "postgresql":
        return PostgresTriggers(connection)
    if connection.vendor == "sqlite":
        return SqliteTriggers(connection)
    return None


def for_connection(connection: Any) -> Capture:
    """The capture of ``connection``'s database (``CHARTBUILD_CAPTURE`` may force ``"orm"``)."""
    if conf.capture() != "orm":
        found = triggers_of(connection)
        if found is not None:
            return found
    return OrmCapture(connection)


def for_database(using: str | None = None) -> Capture:
    return for_connection(connections[using or conf.database()])


def remove(connection: Any) -> list[str]:
    """Remove every chartbuild trigger of ``connection``'s database, whatever the setting."""
    found = triggers_of(connection)
    return found.remove() if found else []


def watched_tables(cat: catalog.Catalog) -> dict[str, frozenset[str]]:
    """``{table: models that read it}`` for every model a valid chart or number reads."""
    return tables.readers(cat.models())


def watched_columns(cat: catalog.Catalog) -> dict[str, frozenset[str] | None]:
    """``{table: the columns an UPDATE must set to concern one of its charts}``, for the
    watched tables whose every reader says which fields of it it reads (``columns=``);
    None (every column) for the others."""
    from chartbuild.declare.registry import resolve_model

    bad = {(p.generator, p.name) for p in cat.problems}
    found: dict[str, frozenset[str] | None] = {}

    def note(table: str, columns: frozenset[str] | None) -> None:
        known = found.get(table, frozenset())
        found[table] = None if columns is None or known is None else known | columns

    @functools.cache
    def read(models: tuple[str, ...]) -> dict[str, frozenset[str]]:
        return tables.of_models(models)

    @functools.cache
    def own(model: str, names: tuple[str, ...]) -> tuple[str | None, frozenset[str] | None]:
        """The table of ``model`` and the columns of its fields ``names`` (None, None if
        one is not a field of its own)."""
        meta = resolve_model(model)._meta
        local = {f.name: f.column for f in meta.local_concrete_fields}
        local |= {f.column: f.column for f in meta.local_concrete_fields}
        if not all(name in local for name in names):
            return None, None
        return meta.db_table, frozenset(local[name] for name in names)

    # Thousands of charts read a few models: each set of models is resolved once.
    for generator in cat.generators:
        for declaration in generator.declarations:
            if {(generator.name, declaration.name), (generator.name, "")} & bad:
                continue
            declared = dict(declaration.columns)
            for model, reads in read(tuple(declaration.models)).items():
                table, columns = (
                    own(model, tuple(declared[model])) if model in declared else (None, None)
                )
                for name in reads:
                    note(name, columns if name == table else None)
    return found


def watched_tables_cached() -> frozenset[str]:
    """:func:`watched_tables`, read again only when a build has seen the generators change."""
    return frozenset(watched_tables(catalog.cached()))


_columns_cache: dict[Any, dict[str, frozenset[str] | None]] = {}


def watched_columns_cached() -> dict[str, frozenset[str] | None]:
    """:func:`watched_columns` of the cached catalog, once per version of it."""
    key = catalog.cache_key()
    found = _columns_cache.get(key)
    if found is None:
        _columns_cache.clear()
        found = _columns_cache[key] = watched_columns(catalog.cached())
    return found


def concerns(table: str, written: Iterable[str]) -> bool:
    """Whether an ``UPDATE`` of the columns ``written`` of ``table`` concerns a chart."""
    columns = watched_columns_cached().get(table)
    return columns is None or not columns.isdisjoint(written)


def problem(table: str, state: str, readers: Iterable[str]) -> str:
    """What a watched table whose trigger is ``state`` (missing, outdated) means."""
    kind = "no" if state == MISSING else "an outdated"
    return (
        f"table {table} (read through {', '.join(sorted(readers))}) has {kind} change-capture "
        "trigger: its update(), bulk_*() and raw SQL writes do not rebuild the charts"
    )


def sync(using: str | None = None, *, cat: catalog.Catalog | None = None) -> SyncReport:
    """Install, update and remove triggers to follow what the generators read.

    If a generator cannot be imported, nothing is removed: the tables it reads are unknown.
    """
    capture = for_database(using)
    if not capture.triggers:
        return capture.sync(())
    if not capture.log_exists():
        return SyncReport(removed=capture.remove())
    cat = cat or catalog.load()
    broken = any(g.error for g in cat.generators)
    return capture.sync(watched_tables(cat), watched_columns(cat), remove_unwatched=not broken)


def on_post_migrate(
    using: str, verbosity: int = 1, stdout: Any = None, plan: Any = None, **kwargs: Any
) -> None:
    """``post_migrate`` receiver: bring the triggers of chartbuild's database up to date.

    A migration may change the data of a table charts read (``RunPython``, ``RunSQL``, a
    new column's default), while SQLite rebuilds a table without its triggers. So each
    watched table of an app that had migrations applied gets a change record too. A
    failure is reported, not raised: the migrations are applied already.
    """
    if using != conf.database():
        return
    try:
        cat = catalog.load()
        report = sync(using, cat=cat)
        migrated = {migration.app_label for migration, _ in plan or ()}
        if migrated and for_database(using).log_exists():
            record(using, migrated_tables(cat, migrated))
    except DatabaseError as exc:
        logger.error(
            "chartbuild could not install its change-capture triggers in database %r: %s. "
            "Writes other than save() and delete() are not seen until it can: give the "
            "migrating role ownership of the tables and run `manage.py chartbuild capture "
            '--install`, or set CHARTBUILD_CAPTURE = "orm".',
            using,
            exc,
        )
        return
    if report and verbosity >= 1 and stdout is not None:
        stdout.write(report.summary() + "\n")
    for table, why in report.skipped.items():
        if why != NO_SUCH_TABLE:
            logger.warning("chartbuild cannot capture writes to %s: it is %s", table, why)


def migrated_tables(cat: catalog.Catalog, app_labels: set[str]) -> list[str]:
    """The watched tables that belong to models of ``app_labels``."""
    owners = tables.owners()
    labels = {label.lower() for label in app_labels}
    return sorted(t for t in watched_tables(cat) if owners.get(t, "").split(".")[0] in labels)


def record(using: str, changed: Iterable[str]) -> None:
    """Add a change record for each of ``changed`` tables, as their triggers would."""
    rows = [Change(table_name=table) for table in changed]
    if rows:
        Change.objects.using(using).bulk_create(rows)


def on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: ORM capture where the database has no triggers."""
    if connection.alias == conf.database():
        capture = for_connection(connection)
        if isinstance(capture, OrmCapture):
            capture.install_wrapper()
