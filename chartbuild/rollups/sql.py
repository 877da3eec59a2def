"""The SQL that keeps a rollup, for PostgreSQL and SQLite, compiled from its declaration.

A rollup is two tables:

- ``chartbuild_rollup_<name>``: one row per bucket (``__key``, the buckets, the stored
  parts of each aggregate, ``__rows`` and ``__dirty``);
- ``chartbuild_rollup_<name>_delta``: signed differences, appended by the triggers of the
  base table in the writer's transaction, and folded into the rollup by the reader.

Each aggregate is stored as parts that add up: ``Count`` as a count, ``Sum`` and ``Avg``
as the sum of the non-null values and their count, ``Min`` and ``Max`` as the extreme
(a delete or an update marks the bucket ``__dirty``, and the fold computes it again).
The same compiled ``GROUP BY`` query of the base table (Django's, with the filter and
the buckets) gives the differences, over the statement's rows (PostgreSQL's transition
tables) or the row (SQLite's ``NEW``/``OLD``), and fills the rollup from the whole table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.db.models import Avg, Count, Max, Min, Sum, Value
from django.db.models.functions import Coalesce

from chartbuild.exceptions import ChartbuildError

PREFIX = "chartbuild_rollup_"
ROWS = "__rows"
DIRTY = "__dirty"
KEY = "__key"
#: Changes when the SQL below changes: a rollup kept by another version is made again.
VERSION = "r2"
#: The versions before it, whose PostgreSQL functions a drop removes too.
EARLIER = ("r1",)


class RollupError(ChartbuildError):
    """A rollup's declaration cannot be kept by the database."""


class Declared(Protocol):
    name: str
    filter: Any
    by: dict[str, Any]
    aggregates: dict[str, Any]

    @property
    def model(self) -> Any: ...

    @property
    def keys(self) -> list[str]: ...

    def bucket(self, name: str) -> Any: ...

    def digest(self) -> str: ...

    def queryset(
        self,
        using: str | None = None,
        *,
        keys: Sequence[str] | None = None,
        equal: Mapping[str, Any] | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class Part:
    """A stored column: ``how`` it folds (``add``, ``min``, ``max``)."""

    column: str
    how: str
    expression: Any


def parts(rollup: Declared) -> list[Part]:
    """The stored columns of ``rollup``'s aggregates, ``__rows`` first."""
    found = [Part(ROWS, "add", Count("*"))]
    for name, aggregate in rollup.aggregates.items():
        (source,) = aggregate.source_expressions
        if isinstance(aggregate, Count):
            found.append(Part(name, "add", Count(source)))
        elif isinstance(aggregate, Sum | Avg):
            field = _field(rollup, source)
            found.append(
                Part(f"{name}__sum", "add", Coalesce(Sum(source), Value(0), output_field=field))
            )
            found.append(Part(f"{name}__n", "add", Count(source)))
        elif isinstance(aggregate, Min):
            found.append(Part(name, "min", Min(source)))
        elif isinstance(aggregate, Max):
            found.append(Part(name, "max", Max(source)))
    return found


def has_extremes(rollup: Declared) -> bool:
    return any(isinstance(a, Min | Max) for a in rollup.aggregates.values())


def _field(rollup: Declared, source: Any) -> Any:
    return rollup.model._meta.get_field(source.name)


def table(rollup: Declared) -> str:
    return f"{PREFIX}{rollup.name}"


def delta_table(rollup: Declared) -> str:
    return f"{PREFIX}{rollup.name}_delta"


class Compiled:
    """The SQL of one rollup on one connection."""

    def __init__(self, rollup: Declared, connection: Any) -> None:
        self.rollup = rollup
        self.connection = connection
        self.vendor = connection.vendor
        self.quote = connection.ops.quote_name
        self.parts = parts(rollup)
        self.keys = rollup.keys
        self.base = rollup.model._meta.db_table
        self.table = self.quote(table(rollup))
        self.delta = self.quote(delta_table(rollup))

    # -- the grouped query of the base table -------------------------------------------

    def queryset(self) -> Any:
        """The base table's rows grouped by bucket, with the stored parts."""
        queryset = self.rollup.model._base_manager.using(self.connection.alias).all()
        if self.rollup.filter is not None:
            queryset = queryset.filter(self.rollup.filter)
        keys = {f"cbk{i}": self.rollup.bucket(k) for i, k in enumerate(self.keys)}
        return (
            queryset.annotate(**keys)
            .values(*keys)
            .annotate(**{f"cbp{i}": p.expression for i, p in enumerate(self.parts)})
            .order_by()
        )

    def grouped(self, source: str | None = None) -> str:
        """``SELECT <buckets>, <parts> ... GROUP BY <buckets>`` over the base table, or over
        ``source`` (a table or subquery standing for its rows), with literal values."""
        query = self.queryset().query
        if len([a for a in query.alias_map if query.alias_refcount.get(a)]) > 1:
            raise RollupError(
                f"rollup {self.rollup.name!r}: its filter and buckets must use the columns of"
                f" {self.base} only (no joins)"
            )
        sql, params = query.sql_with_params()
        sql = self.literal(sql, params)
        if source is not None:
            base = f"FROM {self.quote(self.base)}"
            if sql.count(base) != 1:
                raise RollupError(f"rollup {self.rollup.name!r}: cannot compile its query")
            sql = sql.replace(base, f"FROM {source} {self.quote(self.base)}")
        names = [
            *(f"{self._typed(i)} AS {self.quote(k)}" for i, k in enumerate(self.keys)),
            *(f'g."cbp{i}" AS {self.quote(p.column)}' for i, p in enumerate(self.parts)),
        ]
        return f"SELECT {', '.join(names)} FROM ({sql}) g"

    def _typed(self, index: int) -> str:
        """Bucket ``index`` of the grouped query, as the rollup's column holds it (Django's
        ``TruncMonth`` gives a timestamp on PostgreSQL, stored as a date): the same bucket
        must give the same ``__key`` whichever way it comes."""
        column = f'g."cbk{index}"'
        if self.vendor != "postgresql":
            return column
        return f"CAST({column} AS {self._key_type(self.keys[index])})"

    def literal(self, sql: str, params: Any) -> str:
        """``sql`` with its parameters written in (trigger bodies take no parameters)."""
        if not params:
            return sql.replace("%%", "%")
        if self.vendor == "postgresql":
            return str(self.connection.ops.compose_sql(sql, params))
        with self.connection.cursor() as cursor:
            marks = ", ".join(["quote(%s)"] * len(params))
            cursor.execute(f"SELECT {marks}", params)
            quoted = cursor.fetchone()
        return sql % tuple(quoted)

    def signed(self, source: str, sign: int) -> str:
        """The differences the rows of ``source`` make: added (1) or taken away (-1), in
        columns named as the delta table's."""
        columns = [self.quote(k) for k in self.keys]
        for part in self.parts:
            column = self.quote(part.column)
            if part.how == "add":
                columns.append(column if sign > 0 else f"-{column} AS {column}")
            else:
                columns.append(column if sign > 0 else f"NULL AS {column}")
        dirty = "1" if sign < 0 and has_extremes(self.rollup) else "0"
        columns.append(f"{dirty} AS {self.quote(DIRTY)}")
        return f"SELECT {', '.join(columns)} FROM ({self.grouped(source)}) s"

    # -- tables --------------------------------------------------------------------------

    def columns(self) -> list[str]:
        """Buckets and parts, quoted, in table order (without ``__key`` and ``__dirty``)."""
        return [self.quote(k) for k in self.keys] + [self.quote(p.column) for p in self.parts]

    def create(self) -> list[str]:
        keys = [f"{self.quote(k)} {self._key_type(k)}" for k in self.keys]
        stored = [f"{self.quote(p.column)} {self._part_type(p)}" for p in self.parts]
        if self.vendor == "postgresql":
            ident = "id bigserial PRIMARY KEY"
        else:
            ident = "id INTEGER PRIMARY KEY AUTOINCREMENT"
        dirty = f"{self.quote(DIRTY)} integer NOT NULL DEFAULT 0"
        return [
            f"CREATE TABLE {self.table} ({self.quote(KEY)} text PRIMARY KEY, "
            f"{', '.join([*keys, *stored, dirty])})",
            f"CREATE TABLE {self.delta} ({ident}, {', '.join([*keys, *stored, dirty])})",
        ]

    def drop(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.delta}", f"DROP TABLE IF EXISTS {self.table}"]

    def _key_type(self, name: str) -> str:
        if self.vendor != "postgresql":
            return ""
        index = self.keys.index(name)
        field = self.queryset().query.annotations[f"cbk{index}"].output_field
        return str(field.db_type(self.connection))

    def _part_type(self, part: Part) -> str:
        if self.vendor != "postgresql":
            return "NOT NULL DEFAULT 0" if part.how == "add" else ""
        if part.how != "add":
            (source,) = part.expression.source_expressions
            return str(_field(self.rollup, source).db_type(self.connection))
        if part.column.endswith("__sum"):
            (source,) = part.expression.source_expressions[0].source_expressions
            internal = _field(self.rollup, source).get_internal_type()
            kind = "double precision" if internal == "FloatField" else "numeric"
            return f"{kind} NOT NULL DEFAULT 0"
        return "bigint NOT NULL DEFAULT 0"

    # -- folding -------------------------------------------------------------------------

    def key_of(self, alias: str) -> str:
        keys = ", ".join(f"{alias}.{self.quote(k)}" for k in self.keys)
        if self.vendor == "postgresql":
            return f"json_build_array({keys})::text"
        return f"json_array({keys})"

    def _summed(self, alias: str) -> str:
        """The parts of ``alias``'s rows added up per bucket, with ``__key`` first."""
        folded = []
        for part in self.parts:
            column = self.quote(part.column)
            how = {"add": "SUM", "min": "MIN", "max": "MAX"}[part.how]
            folded.append(f"{how}({alias}.{column})")
        keys = ", ".join(f"{alias}.{self.quote(k)}" for k in self.keys)
        group = f" GROUP BY {keys}" if keys else ""
        return (
            f"SELECT {self.key_of(alias)}, {keys + ', ' if keys else ''}{', '.join(folded)},"
            f" MAX({alias}.{self.quote(DIRTY)}) FROM {{source}} {alias}{{where}}{group}"
        )

    def _merge(self) -> str:
        sets = []
        for part in self.parts:
            column = self.quote(part.column)
            if part.how == "add":
                sets.append(f"{column} = t.{column} + excluded.{column}")
            elif self.vendor == "postgresql":
                how = "LEAST" if part.how == "min" else "GREATEST"
                sets.append(f"{column} = {how}(t.{column}, excluded.{column})")
            else:
                how = "min" if part.how == "min" else "max"
                sets.append(
                    f"{column} = CASE WHEN excluded.{column} IS NULL THEN t.{column}"
                    f" WHEN t.{column} IS NULL THEN excluded.{column}"
                    f" ELSE {how}(t.{column}, excluded.{column}) END"
                )
        dirty = self.quote(DIRTY)
        if self.vendor == "postgresql":
            sets.append(f"{dirty} = GREATEST(t.{dirty}, excluded.{dirty})")
        else:
            sets.append(f"{dirty} = max(t.{dirty}, excluded.{dirty})")
        return f"ON CONFLICT ({self.quote(KEY)}) DO UPDATE SET {', '.join(sets)}"

    def _into(self) -> str:
        columns = ", ".join([self.quote(KEY), *self.columns(), self.quote(DIRTY)])
        return f"INSERT INTO {self.table} AS t ({columns})"

    def fold(self) -> list[str]:
        """Move the committed differences into the rollup; drop emptied buckets."""
        dirty = self.quote(DIRTY)
        if self.vendor == "postgresql":
            moved = ", ".join([*self.columns(), dirty])
            summed = self._summed("m").format(source="moved", where="")
            statements = [
                f"WITH moved AS (DELETE FROM {self.delta} RETURNING {moved}) "
                f"{self._into()} {summed} {self._merge()}"
            ]
        else:
            summed = self._summed("d").format(source=self.delta, where=" WHERE true")
            statements = [f"{self._into()} {summed} {self._merge()}", f"DELETE FROM {self.delta}"]
        statements.append(f"DELETE FROM {self.table} WHERE {self.quote(ROWS)} = 0")
        if has_extremes(self.rollup):
            statements.append(self._recompute_dirty())
        return statements

    def _recompute_dirty(self) -> str:
        extremes = [p for p in self.parts if p.how != "add"]
        sets = ", ".join(f"{self.quote(p.column)} = s.{self.quote(p.column)}" for p in extremes)
        dirty = self.quote(DIRTY)
        return (
            f"UPDATE {self.table} SET {sets}, {dirty} = 0"
            f" FROM (SELECT {self.key_of('f')} AS k, f.* FROM ({self.grouped()}) f) s"
            f" WHERE {self.table}.{dirty} = 1 AND {self.table}.{self.quote(KEY)} = s.k"
        )

    def fill(self) -> list[str]:
        """Empty the rollup and its differences, and fill it from the whole table."""
        dirty = self.quote(DIRTY)
        columns = ", ".join(self.columns())
        whole = f"SELECT {self.key_of('f')}, {columns}, 0 FROM ({self.grouped()}) f"
        return [
            f"DELETE FROM {self.delta}",
            f"DELETE FROM {self.table}",
            f"INSERT INTO {self.table} ({', '.join([self.quote(KEY), *self.columns(), dirty])})"
            f" {whole}",
        ]

    def _into_delta(self) -> str:
        columns = ", ".join([*self.columns(), self.quote(DIRTY)])
        return f"INSERT INTO {{delta}} ({columns})"

    def append(self, source: str, sign: int) -> str:
        """The statement a trigger runs: append the differences of ``source``'s rows."""
        return f"{self._into_delta()} {self.signed(source, sign)}"

    def append_both(self, old: str, new: str) -> str:
        """The statement PostgreSQL's ``UPDATE`` trigger runs: the differences of the rows
        before (``old``) and after (``new``), both as they are. Leaving out the buckets
        that cancel out (:meth:`append_update`) cost a ``save()`` more there than it saved
        the fold."""
        return f"{self.append(old, -1)} UNION ALL {self.signed(new, 1)}"

    def append_update(self, old: str, new: str) -> str:
        """The statement SQLite's ``UPDATE`` trigger runs: the differences of the row
        before (``old``) and after (``new``), added up per bucket in one statement. Buckets
        whose parts cancel out are left out (unless the rollup keeps a ``Min`` or ``Max``,
        which the rows it lost mark to be computed again): an update that leaves the
        rollup's columns as they were appends nothing."""
        keys = [self.quote(k) for k in self.keys]
        how = {"add": "SUM", "min": "MIN", "max": "MAX"}
        folded = [f"{how[p.how]}(u.{self.quote(p.column)})" for p in self.parts]
        group = f" GROUP BY {', '.join(f'u.{k}' for k in keys)}" if keys else ""
        kept = "COUNT(*) > 0"
        if not has_extremes(self.rollup):
            changed = " OR ".join(f"SUM(u.{self.quote(p.column)}) <> 0" for p in self.parts)
            kept = f"{kept} AND ({changed})"
        selected = ", ".join([*(f"u.{k}" for k in keys), *folded, f"MAX(u.{self.quote(DIRTY)})"])
        return (
            f"{self._into_delta()} SELECT {selected}"
            f" FROM ({self.signed(old, -1)} UNION ALL {self.signed(new, 1)}) u{group}"
            f" HAVING {kept}"
        )

    def read_columns(self) -> list[str]:
        """The base table's columns that the filter, the buckets or the aggregates read:
        an ``UPDATE`` that sets none of them leaves the rollup as it was."""
        sql = self.grouped()
        base = self.quote(self.base)
        fields = self.rollup.model._meta.concrete_fields
        return [f.column for f in fields if f"{base}.{self.quote(f.column)}" in sql]

    # -- triggers ------------------------------------------------------------------------

    def trigger_names(self) -> dict[str, str]:
        base = f"{PREFIX}{self.rollup.name}"
        return {op: f"{base}_{op}" for op in ("insert", "update", "delete", "truncate")}

    def triggers(self, schema: str = "") -> list[str]:
        """Create the triggers that append the differences of every write to the base table."""
        names = self.trigger_names()
        base = self.quote(self.base)
        if self.vendor == "sqlite":
            columns = [f.column for f in self.rollup.model._meta.concrete_fields]

            def row(which: str) -> str:
                picked = ", ".join(f"{which}.{self.quote(c)} AS {self.quote(c)}" for c in columns)
                return f"(SELECT {picked})"

            plus = self.append(row("NEW"), 1).format(delta=self.delta)
            minus = self.append(row("OLD"), -1).format(delta=self.delta)
            moved = self.append_update(row("OLD"), row("NEW")).format(delta=self.delta)
            read = self.read_columns()
            of = f" OF {', '.join(self.quote(c) for c in read)}" if read else ""
            return [
                f"CREATE TRIGGER {self.quote(names['insert'])} AFTER INSERT ON {base}"
                f" BEGIN {plus}; END",
                f"CREATE TRIGGER {self.quote(names['update'])} AFTER UPDATE{of} ON {base}"
                f" BEGIN {moved}; END",
                f"CREATE TRIGGER {self.quote(names['delete'])} AFTER DELETE ON {base}"
                f" BEGIN {minus}; END",
            ]
        qualified = f"{self.quote(schema)}." if schema else ""
        delta, rollup = f"{qualified}{self.delta}", f"{qualified}{self.table}"
        base = f"{qualified}{base}"
        plus = self.append("chartbuild_new", 1).format(delta=delta)
        minus = self.append("chartbuild_old", -1).format(delta=delta)
        moved = self.append_both("chartbuild_old", "chartbuild_new").format(delta=delta)
        function = f"{qualified}{self.quote(names['insert'] + '_' + VERSION)}"
        emptied = f"{qualified}{self.quote(names['truncate'] + '_' + VERSION)}"
        settings = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger {settings} AS $cb$"
            f" BEGIN IF TG_OP = 'INSERT' THEN {plus}; ELSIF TG_OP = 'DELETE' THEN {minus};"
            f" ELSE {moved}; END IF; RETURN NULL; END $cb$",
            f"CREATE OR REPLACE FUNCTION {emptied}() RETURNS trigger {settings} AS $cb$"
            f" BEGIN DELETE FROM {delta}; DELETE FROM {rollup}; RETURN NULL; END $cb$",
            f"CREATE TRIGGER {self.quote(names['insert'])} AFTER INSERT ON {base}"
            f" REFERENCING NEW TABLE AS chartbuild_new FOR EACH STATEMENT"
            f" EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {self.quote(names['update'])} AFTER UPDATE ON {base}"
            f" REFERENCING OLD TABLE AS chartbuild_old NEW TABLE AS chartbuild_new"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {self.quote(names['delete'])} AFTER DELETE ON {base}"
            f" REFERENCING OLD TABLE AS chartbuild_old FOR EACH STATEMENT"
            f" EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {self.quote(names['truncate'])} AFTER TRUNCATE ON {base}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {emptied}()",
        ]

    def drop_triggers(self, base_table: str, schema: str = "") -> list[str]:
        """Drop the triggers (and PostgreSQL functions) of this rollup from ``base_table``."""
        names = self.trigger_names()
        if self.vendor == "sqlite":
            return [f"DROP TRIGGER IF EXISTS {self.quote(n)}" for n in list(names.values())[:3]]
        qualified = f"{self.quote(schema)}." if schema else ""
        base = f"{qualified}{self.quote(base_table)}"
        statements = [f"DROP TRIGGER IF EXISTS {self.quote(n)} ON {base}" for n in names.values()]
        for name in (names["insert"], names["truncate"]):
            for version in (*EARLIER, VERSION):
                statements.append(
                    f"DROP FUNCTION IF EXISTS {qualified}{self.quote(name + '_' + version)}()"
                )
        return statements
