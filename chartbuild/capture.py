"""Change capture: every committed write to a table a chart reads leaves a record.

django-mqueue sees ``save()`` and ``delete()`` only. Database triggers see every write,
whatever issued it (``update()``, ``bulk_create()``, ``bulk_update()``, raw SQL, other
programs), and record it in the same transaction, so a rolled-back write records nothing.
The records go to :class:`~chartbuild.models.Change`, an append-only log: concurrent
writers of one table are never serialised by a shared counter row. The exporter counts
the log like mqueue's events (gap-safe) and deletes what it has settled.

One :class:`Capture` per database backend:

- PostgreSQL (:class:`PostgresTriggers`): statement-level ``AFTER INSERT OR UPDATE OR
  DELETE`` and ``AFTER TRUNCATE`` triggers, one record per statement however many rows it
  touches, and a ``NOTIFY chartbuild`` that PostgreSQL delivers at commit (``doit auto``
  listens). The function is ``SECURITY DEFINER`` with a fixed ``search_path``: a program
  connecting as another role, or with another search path, still writes the record.
- SQLite (:class:`SqliteTriggers`): row-level triggers (SQLite has no others). A row
  records nothing when the newest record in the log is already one of its table's: a
  100,000-row ``UPDATE`` leaves one record. The exporter adds an empty *marker* record
  when it has read the log, so a write after that read always records again.
- Other backends (:class:`OrmCapture`): no triggers; an execute wrapper on Django's
  connection records the ORM's and raw SQL's writes to watched tables in the same
  transaction. Other programs' writes are not seen (system check ``chartbuild.W002``).

``manage.py migrate`` installs, updates and removes the triggers after migrating
(:func:`on_post_migrate`), following the models the generators read;
``manage.py chartbuild capture`` lists them; system check ``chartbuild.E010`` names a
watched table whose trigger is missing or outdated.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connections, transaction

from chartbuild import catalog, conf, tables
from chartbuild.models import Change

logger = logging.getLogger(__name__)

LOG_TABLE = Change._meta.db_table
#: The ``NOTIFY`` channel of the PostgreSQL triggers.
CHANNEL = "chartbuild"
#: What every chartbuild trigger's name starts with.
PREFIX = "chartbuild"
#: Changes when the trigger definitions change: installed triggers of another version
#: are reported as outdated and replaced by ``migrate``.
VERSION = "v1"

INSTALLED = "installed"
MISSING = "missing"
OUTDATED = "outdated"
NOT_A_TABLE = "not a table"
UNWATCHED = "unwatched"
ORM = "captured by Django only"


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
    """How writes are captured on one database. Subclasses install triggers."""

    #: Whether writes by other programs are seen.
    triggers = False

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def status(self, watched: Iterable[str]) -> dict[str, str]:
        """State of every watched table, and of unwatched tables that still have triggers."""
        return dict.fromkeys(watched, ORM)

    def sync(self, watched: Iterable[str], *, remove_unwatched: bool = True) -> SyncReport:
        """Install or update the capture of ``watched`` tables; remove it elsewhere."""
        return SyncReport()

    def remove(self) -> list[str]:
        """Remove every chartbuild trigger; returns the tables that had some."""
        return []

    def log_exists(self) -> bool:
        return LOG_TABLE in self.connection.introspection.table_names()

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
#: Where the count before a statement is kept: transaction-local, per table and nesting.
_BEFORE = "'chartbuild.r' || TG_RELID || '_' || pg_trigger_depth()"


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
    functions = {
        f"{PREFIX}_before_{VERSION}": (
            "\nBEGIN\n"
            f"    PERFORM set_config({_BEFORE}, ({_ROWS_WRITTEN})::text, true);\n"
            "    RETURN NULL;\n"
            "END\n"
        ),
        f"{PREFIX}_capture_{VERSION}": (
            "\nBEGIN\n"
            "    IF TG_OP = 'TRUNCATE' OR TG_NARGS > 0"
            " OR NOT current_setting('track_counts')::boolean\n"
            f"       OR {_ROWS_WRITTEN}\n"
            f"          > coalesce(nullif(current_setting({_BEFORE}, true), '')::bigint, -1)\n"
            "    THEN\n"
            "        INSERT INTO {log} (table_name) VALUES (TG_TABLE_NAME);\n"
            f"        PERFORM pg_notify({literal(CHANNEL)}, TG_TABLE_NAME);\n"
            "    END IF;\n"
            "    RETURN NULL;\n"
            "END\n"
        ),
    }

    def _triggers(self, relkind: str) -> dict[str, tuple[str, str, str]]:
        """``{name: (timing and events, function, arguments)}`` a table of ``relkind`` gets."""
        before, capture = self.functions
        if relkind == "p":  # rows are counted on the partitions: record every statement
            return {
                f"{PREFIX}_{VERSION}": ("AFTER INSERT OR UPDATE OR DELETE", capture, "'always'"),
                f"{PREFIX}_{VERSION}_truncate": ("AFTER TRUNCATE", capture, ""),
            }
        return {
            f"{PREFIX}_{VERSION}_before": ("BEFORE INSERT OR UPDATE OR DELETE", before, ""),
            f"{PREFIX}_{VERSION}": ("AFTER INSERT OR UPDATE OR DELETE", capture, ""),
            f"{PREFIX}_{VERSION}_truncate": ("AFTER TRUNCATE", capture, ""),
        }

    def _schema(self, cursor: Any) -> str:
        """The schema of the change log (the trigger functions go there too)."""
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.oid = to_regclass(%s)",
            [self.quote(LOG_TABLE)],
        )
        row = cursor.fetchone()
        if row is None:
            raise DatabaseError(f"chartbuild's table {LOG_TABLE} does not exist: run migrate")
        return str(row[0])

    def _current_bodies(self, cursor: Any) -> dict[str, str]:
        """The function bodies of this version, or none if the change log is gone."""
        try:
            return self._bodies(self._schema(cursor))
        except DatabaseError:
            return {}

    def _bodies(self, schema: str) -> dict[str, str]:
        log = f"{self.quote(schema)}.{self.quote(LOG_TABLE)}"
        return {name: body.replace("{log}", log) for name, body in self.functions.items()}

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
            " t.tgnargs FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE NOT t.tgisinternal AND t.tgname LIKE %s AND pg_table_is_visible(c.oid)",
            [PREFIX + "%"],
        )
        rows = cursor.fetchall()
        bodies = self._current_bodies(cursor) if rows else {}
        found: dict[str, set[tuple[str, bool, str]]] = {}
        for table, name, enabled, function, source, nargs in rows:
            current = function if bodies.get(function) == source else ""
            found.setdefault(table, set()).add((name, bool(enabled), f"{current}/{nargs}"))
        return found

    def _state(self, relkind: str, triggers: set[tuple[str, bool, str]]) -> str:
        if not triggers:
            return MISSING
        expected = {
            (name, True, f"{function}/{1 if args else 0}")
            for name, (_, function, args) in self._triggers(relkind).items()
        }
        return INSTALLED if triggers == expected else OUTDATED

    def status(self, watched: Iterable[str]) -> dict[str, str]:
        watched = set(watched)
        with self.connection.cursor() as cursor:
            installed = self._installed(cursor)
            kinds = self._kinds(cursor, watched)
        found = {
            table: (
                self._state(kinds[table], installed.get(table, set()))
                if kinds.get(table) in ("r", "p")
                else NOT_A_TABLE
            )
            for table in watched
        }
        found.update({table: UNWATCHED for table in installed if table not in watched})
        return found

    def sync(self, watched: Iterable[str], *, remove_unwatched: bool = True) -> SyncReport:
        report = SyncReport()
        watched = set(watched)
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            schema = self._schema(cursor)
            installed = self._installed(cursor)
            kinds = self._kinds(cursor, watched)
            for name, body in self._bodies(schema).items():
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
                kind = kinds.get(table, "")
                if kind not in ("r", "p"):
                    report.skipped[table] = NOT_A_TABLE
                    continue
                triggers = installed.get(table, set())
                if self._state(kind, triggers) == INSTALLED:
                    continue
                self._drop(cursor, table, triggers)
                for name, (when, function, args) in self._triggers(kind).items():
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
            self._drop_old_functions(cursor, keep=set(self.functions))
        return report

    def _drop(self, cursor: Any, table: str, triggers: Iterable[tuple[str, bool, str]]) -> None:
        for name, _, _ in triggers:
            cursor.execute(f"DROP TRIGGER IF EXISTS {self.quote(name)} ON {self.quote(table)}")

    def _drop_old_functions(self, cursor: Any, keep: set[str]) -> None:
        """Drop chartbuild's trigger functions of other versions that no trigger uses."""
        cursor.execute(
            "SELECT p.oid::regprocedure::text, p.proname FROM pg_proc p"
            " WHERE p.proname LIKE %s AND pg_function_is_visible(p.oid)"
            " AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgfoid = p.oid)",
            [PREFIX + "%"],
        )
        for signature, name in cursor.fetchall():
            if name not in keep:
                cursor.execute(f"DROP FUNCTION IF EXISTS {signature}")

    def remove(self) -> list[str]:
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            installed = self._installed(cursor)
            for table, triggers in sorted(installed.items()):
                self._drop(cursor, table, triggers)
            self._drop_old_functions(cursor, keep=set())
        return sorted(installed)


class SqliteTriggers(Capture):
    triggers = True
    operations = ("insert", "update", "delete")

    def _name(self, table: str, operation: str) -> str:
        return f"{PREFIX}_{VERSION}_{table}_{operation}"

    def definitions(self, table: str) -> dict[str, str]:
        """``{trigger name: CREATE TRIGGER statement}`` for one table."""
        log = self.quote(LOG_TABLE)
        name = literal(table)
        return {
            self._name(table, operation): (
                f"CREATE TRIGGER {self.quote(self._name(table, operation))}"
                f" AFTER {operation.upper()} ON {self.quote(table)}"
                f" WHEN (SELECT table_name FROM {log} ORDER BY id DESC LIMIT 1) IS NOT {name}"
                f" BEGIN INSERT INTO {log} (table_name) VALUES ({name}); END"
            )
            for operation in self.operations
        }

    def _installed(self, cursor: Any) -> dict[str, dict[str, str]]:
        cursor.execute(
            "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger'"
            " AND substr(name, 1, %s) = %s",
            [len(PREFIX), PREFIX],
        )
        found: dict[str, dict[str, str]] = {}
        for table, name, sql in cursor.fetchall():
            found.setdefault(table, {})[name] = sql
        return found

    def _tables(self, cursor: Any) -> set[str]:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in cursor.fetchall()}

    def _state(self, table: str, triggers: dict[str, str]) -> str:
        if not triggers:
            return MISSING
        return INSTALLED if triggers == self.definitions(table) else OUTDATED

    def status(self, watched: Iterable[str]) -> dict[str, str]:
        watched = set(watched)
        with self.connection.cursor() as cursor:
            installed = self._installed(cursor)
            existing = self._tables(cursor)
        found = {
            table: (
                self._state(table, installed.get(table, {})) if table in existing else NOT_A_TABLE
            )
            for table in watched
        }
        found.update({table: UNWATCHED for table in installed if table not in watched})
        return found

    def sync(self, watched: Iterable[str], *, remove_unwatched: bool = True) -> SyncReport:
        report = SyncReport()
        watched = set(watched)
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            installed = self._installed(cursor)
            existing = self._tables(cursor)
            for table in sorted(watched):
                if table not in existing:
                    report.skipped[table] = NOT_A_TABLE
                    continue
                triggers = installed.get(table, {})
                if self._state(table, triggers) == INSTALLED:
                    continue
                for name in triggers:
                    cursor.execute(f"DROP TRIGGER IF EXISTS {self.quote(name)}")
                for sql in self.definitions(table).values():
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


#: The statements an :class:`OrmCapture` looks at, and the table they write.
WRITE = re.compile(
    r"""^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)
        \s+[`"\[]?([\w$]+)""",
    re.IGNORECASE | re.VERBOSE,
)


RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


class OrmCapture(Capture):
    """Records writes made through Django's connection (no triggers on this backend)."""

    def install_wrapper(self) -> None:
        """Record this connection's writes to watched tables from now on."""
        if not any(isinstance(w, Recorder) for w in self.connection.execute_wrappers):
            self.connection.execute_wrappers.append(Recorder(watched_tables_cached))


class Recorder:
    """An execute wrapper: a write to a watched table adds a change record beside it.

    Inside a transaction the record joins it (and is dropped on rollback). In autocommit
    mode the record follows the statement, in a transaction of its own (a statement with
    ``RETURNING`` cannot commit before its rows are read), so a crash between the two
    loses it: the database triggers of PostgreSQL and SQLite have no such window.
    """

    def __init__(self, watched: Callable[[], frozenset[str]]) -> None:
        self.watched = watched

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        match = WRITE.match(sql)
        if match is None or match.group(1) not in self.watched():
            return execute(sql, params, many, context)
        return self._record(execute, sql, params, many, context, match.group(1))

    @staticmethod
    def _record(execute: Any, sql: str, params: Any, many: bool, context: Any, table: str) -> Any:
        result = execute(sql, params, many, context)
        # rowcount says 0 for a statement with RETURNING until its rows are read
        if context["cursor"].rowcount != 0 or RETURNING.search(sql):
            with context["connection"].cursor() as cursor:
                cursor.execute(f"INSERT INTO {LOG_TABLE} (table_name) VALUES (%s)", [table])
        return result


def for_connection(connection: Any) -> Capture:
    """The capture of ``connection``'s database (``CHARTBUILD_CAPTURE`` may force ``"orm"``)."""
    if conf.capture() != "orm":
        if connection.vendor == "postgresql":
            return PostgresTriggers(connection)
        if connection.vendor == "sqlite":
            return SqliteTriggers(connection)
    return OrmCapture(connection)


def for_database(using: str | None = None) -> Capture:
    return for_connection(connections[using or conf.database()])


def watched_tables(cat: catalog.Catalog) -> dict[str, frozenset[str]]:
    """``{table: models that read it}`` for every model a valid chart or number reads."""
    return tables.readers(cat.models())


@functools.lru_cache(maxsize=4)
def _watched_tables(state_key: tuple[str, int]) -> frozenset[str]:
    return frozenset(watched_tables(catalog.load()))


def watched_tables_cached() -> frozenset[str]:
    """:func:`watched_tables`, read again only when a build has seen the generators change."""
    return _watched_tables(catalog.cache_key())


def sync(using: str | None = None, *, cat: catalog.Catalog | None = None) -> SyncReport:
    """Install, update and remove triggers to follow what the generators read.

    If a generator cannot be imported, nothing is removed: the tables it reads are unknown.
    """
    capture = for_database(using)
    if not capture.triggers:
        return SyncReport()
    if not capture.log_exists():
        return SyncReport(removed=capture.remove())
    cat = cat or catalog.load()
    broken = any(g.error for g in cat.generators)
    return capture.sync(watched_tables(cat), remove_unwatched=not broken)


def on_post_migrate(using: str, verbosity: int = 1, stdout: Any = None, **kwargs: Any) -> None:
    """``post_migrate`` receiver: bring the triggers of chartbuild's database up to date."""
    if using != conf.database():
        return
    report = sync(using)
    if report and verbosity >= 1 and stdout is not None:
        stdout.write(report.summary() + "\n")
    for table, why in report.skipped.items():
        logger.warning("chartbuild cannot capture writes to %s: it is %s", table, why)


def on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: ORM capture where the database has no triggers."""
    if connection.alias == conf.database():
        capture = for_connection(connection)
        if isinstance(capture, OrmCapture):
            capture.install_wrapper()
