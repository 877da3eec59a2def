"""Keeping rollups in the database: made by ``migrate``, folded as they are read, verified.

- :func:`sync` (after ``migrate``) makes each declared rollup's tables and triggers, and
  fills it from the rows already there; a changed declaration is made and filled again, a
  removed one is dropped. On PostgreSQL the fill reads one snapshot (``REPEATABLE
  READ``) and takes no lock that writers wait for; the differences committed before that
  snapshot are dropped with it, those committed after are folded later. On SQLite it is
  one write transaction.
- The triggers append signed differences to the rollup's delta table in the writer's
  transaction (a rolled-back write appends nothing), so writers to one bucket never wait
  for each other. :func:`read` folds the committed differences into the rollup, then
  reads it: on PostgreSQL ``DELETE ... RETURNING`` takes exactly the committed rows, so a
  difference is folded once, whatever commits meanwhile.
- Elsewhere (another database, ``CHARTBUILD_CAPTURE = "orm"``, or before ``migrate`` made
  it), :func:`read` runs the full ``GROUP BY`` query instead: correct, not fast (system
  check ``chartbuild.W020``).
- :func:`verify` compares a rollup with the full query, names each difference and, asked
  to, fills it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, OperationalError, connections, transaction
from django.db.models import Avg, Count, Min, Sum

from chartbuild import conf
from chartbuild.models import RollupState
from chartbuild.rollups import sql
from chartbuild.rollups.sql import Declared, RollupError

logger = logging.getLogger(__name__)

#: Tolerance of a float sum (and of any sum SQLite keeps: it adds decimals as floats)
#: against the full query, which adds in another order. Counts, integers and
#: PostgreSQL's decimals are compared exactly.
RELATIVE_TOLERANCE = 1e-9

MAINTAINED = "maintained"
NOT_MADE = "not made: run migrate"
OUTDATED = "outdated: run migrate"
RECOMPUTED = "recomputed at each read"


def supported(using: str | None = None) -> bool:
    """Whether the database keeps rollups (PostgreSQL and SQLite with capture triggers)."""
    using = using or conf.database()
    return connections[using].vendor in ("postgresql", "sqlite") and conf.capture() != "orm"


def version(rollup: Declared) -> str:
    return f"{sql.VERSION}-{rollup.digest()}"


def migrated(using: str | None = None) -> bool:
    """Whether chartbuild's migrations made the table of rollup states."""
    connection = connections[using or conf.database()]
    return RollupState._meta.db_table in connection.introspection.table_names()


def _states(using: str) -> dict[str, RollupState]:
    try:
        return {s.name: s for s in RollupState.objects.using(using).all()}
    except DatabaseError:
        return {}


def state(rollup: Declared, using: str | None = None) -> str:
    """How ``rollup`` is kept now: :data:`MAINTAINED`, :data:`NOT_MADE`, :data:`OUTDATED`
    or :data:`RECOMPUTED`."""
    using = using or conf.database()
    if not supported(using):
        return RECOMPUTED
    found = _states(using).get(rollup.name)
    if found is None:
        return NOT_MADE
    return MAINTAINED if found.version == version(rollup) else OUTDATED


@dataclass
class SyncReport:
    made: list[str]
    remade: list[str]
    dropped: list[str]

    def __bool__(self) -> bool:
        return bool(self.made or self.remade or self.dropped)

    def summary(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("made", self.made),
                ("made again", self.remade),
                ("dropped", self.dropped),
            )
            if names
        ]
        return "chartbuild rollups: " + "; ".join(parts)


def sync(
    rollups: Iterable[Declared], using: str | None = None, *, drop_others: bool = True
) -> SyncReport:
    """Make, fill, make again or drop rollups so that the database keeps ``rollups``
    (and, with ``drop_others``, no other)."""
    using = using or conf.database()
    report = SyncReport([], [], [])
    wanted = {r.name: r for r in rollups} if supported(using) else {}
    states = _states(using)
    for name, state_row in states.items():
        if name not in wanted and (drop_others or not supported(using)):
            drop(_Named(name), using, state_row.base_table)
            RollupState.objects.using(using).filter(name=name).delete()
            report.dropped.append(name)
    existing = set(connections[using].introspection.table_names())
    for name, rollup in wanted.items():
        if rollup.model._meta.db_table not in existing:
            continue  # its app is not migrated yet: the migrate that makes it makes this
        found = states.get(name)
        if found is not None and found.version == version(rollup):
            continue
        if found is not None:
            drop(rollup, using, found.base_table)
        make(rollup, using)
        (report.remade if found is not None else report.made).append(name)
    return report


class _Named:
    """A rollup known only by name (no longer declared): enough to drop it."""

    filter = None

    def __init__(self, name: str) -> None:
        self.name = name
        self.by: dict[str, Any] = {}
        self.aggregates: dict[str, Any] = {}
        self.keys: list[str] = []


def _compiled(rollup: Any, using: str) -> sql.Compiled:
    compiled = sql.Compiled.__new__(sql.Compiled)
    connection = connections[using]
    compiled.rollup, compiled.connection, compiled.vendor = rollup, connection, connection.vendor
    compiled.quote = connection.ops.quote_name
    compiled.table = compiled.quote(sql.table(rollup))
    compiled.delta = compiled.quote(sql.delta_table(rollup))
    return compiled


def _schema(using: str) -> str:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return str(cursor.fetchone()[0])


def drop(rollup: Any, using: str | None = None, base_table: str | None = None) -> None:
    """Drop ``rollup``'s triggers (from ``base_table``, default its model's) and tables."""
    using = using or conf.database()
    base_table = base_table or rollup.model._meta.db_table
    connection = connections[using]
    compiled = _compiled(rollup, using)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if base_table in connection.introspection.table_names(cursor):
            for statement in compiled.drop_triggers(base_table, _schema(using)):
                cursor.execute(statement)
        for statement in compiled.drop():
            cursor.execute(statement)


def make(rollup: Declared, using: str | None = None) -> None:
    """Make ``rollup``'s tables and triggers, then fill it from the base table."""
    using = using or conf.database()
    compiled = sql.Compiled(rollup, connections[using])
    schema = _schema(using)
    drop(rollup, using, compiled.base)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for statement in [*compiled.create(), *compiled.triggers(schema)]:
            cursor.execute(statement)
    fill(rollup, using)
    RollupState.objects.using(using).update_or_create(
        name=rollup.name,
        defaults={
            "version": version(rollup),
            "base_table": compiled.base,
            "filled_at": dt.datetime.now(dt.UTC),
        },
    )


def fill(rollup: Declared, using: str | None = None, *, attempts: int = 5) -> None:
    """Fill ``rollup`` again from the whole base table (see the module's docstring)."""
    using = using or conf.database()
    connection = connections[using]
    compiled = sql.Compiled(rollup, connection)
    for attempt in range(attempts):
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                for statement in compiled.fill():
                    cursor.execute(statement)
            return
        except OperationalError as exc:  # a fold or a writer changed what the snapshot read
            if attempt == attempts - 1 or "serializ" not in str(exc).lower():
                raise


def fold(rollup: Declared, using: str | None = None) -> None:
    """Fold the committed differences into ``rollup``."""
    using = using or conf.database()
    connection = connections[using]
    compiled = sql.Compiled(rollup, connection)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for statement in compiled.fold():
            cursor.execute(statement)


def read(
    rollup: Declared,
    *,
    by: Sequence[str] | None = None,
    order_by: Sequence[str] = (),
    using: str | None = None,
    equal: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The rows of ``rollup`` (see :meth:`chartbuild.rollups.Rollup.rows`)."""
    using = using or conf.database()
    equal = dict(equal or {})
    keys = list(rollup.keys if by is None else by)
    wrong = [k for k in [*keys, *equal] if k not in rollup.keys]
    wrong += [o for o in order_by if o.lstrip("-") not in [*keys, *rollup.aggregates]]
    if wrong:
        raise RollupError(
            f"rollup {rollup.name!r}: {', '.join(wrong)} is not one of its buckets"
            f" ({', '.join(rollup.keys)}) or, to order by, its aggregates"
            f" ({', '.join(rollup.aggregates)})"
        )
    if state(rollup, using) != MAINTAINED:
        rows = full(rollup, using, by=keys, equal=equal)
    else:
        fold(rollup, using)
        rows = _stored(rollup, using, keys, equal)
    for key in reversed(list(order_by)):
        name = key.lstrip("-")
        rows.sort(key=lambda r: _sortable(r[name]), reverse=key.startswith("-"))
    return rows


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, None) if value is None else (1, value)  # NULLs first, as Django sorts them ASC


def full(
    rollup: Declared,
    using: str | None = None,
    *,
    by: Sequence[str] | None = None,
    equal: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The rollup's rows from the full ``GROUP BY`` query of the base table."""
    keys = list(rollup.keys if by is None else by)
    alias = {k: f"cbk{i}" for i, k in enumerate(rollup.keys)}
    queryset = rollup.queryset(using, keys=keys, equal=equal or {})
    names = [*keys, *rollup.aggregates]
    aliases = [*(alias[k] for k in keys), *(f"cba{i}" for i in range(len(rollup.aggregates)))]
    if not keys:
        found = queryset.aggregate(
            **{f"cba{i}": a for i, a in enumerate(rollup.aggregates.values())}
        )
        return [{name: found[a] for name, a in zip(names, aliases, strict=True)}]
    return [{name: row[a] for name, a in zip(names, aliases, strict=True)} for row in queryset]


def _stored(
    rollup: Declared, using: str, keys: list[str], equal: Mapping[str, Any]
) -> list[dict[str, Any]]:
    connection = connections[using]
    compiled = sql.Compiled(rollup, connection)
    quote = compiled.quote
    annotations = compiled.queryset().query.annotations
    fields = {k: annotations[f"cbk{i}"].output_field for i, k in enumerate(rollup.keys)}
    columns = [quote(k) for k in keys]
    readers = []
    for name, aggregate in rollup.aggregates.items():
        if isinstance(aggregate, Count):
            columns.append(f"SUM({quote(name)})")
            readers.append(("count", None))
        elif isinstance(aggregate, Sum | Avg):
            summed, counted = f"SUM({quote(f'{name}__sum')})", f"SUM({quote(f'{name}__n')})"
            if isinstance(aggregate, Avg) and connection.vendor == "postgresql":
                summed = f"{summed} / NULLIF({counted}, 0)"  # AVG()'s own division, exactly
            columns += [summed, counted]
            how = "sum" if isinstance(aggregate, Sum) else "avg"
            readers.append((how, _source(rollup, aggregate)))
        else:
            extreme = "MIN" if isinstance(aggregate, Min) else "MAX"
            columns.append(f"{extreme}({quote(name)})")
            readers.append(("extreme", _source(rollup, aggregate)))
    where, params = [f"{quote(sql.ROWS)} > 0"], []
    for key, value in equal.items():
        if value is None:
            where.append(f"{quote(key)} IS NULL")
        else:
            where.append(f"{quote(key)} = %s")
            params.append(fields[key].get_db_prep_value(value, connection, prepared=False))
    group = f" GROUP BY {', '.join(quote(k) for k in keys)}" if keys else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM {compiled.table} WHERE {' AND '.join(where)}{group}",
            params,
        )
        fetched = cursor.fetchall()
    rows = []
    for values in fetched:
        row: dict[str, Any] = {}
        position = 0
        for name in keys:
            row[name] = _convert(values[position], fields[name], connection)
            position += 1
        for name, (how, field) in zip(rollup.aggregates, readers, strict=True):
            if how == "count":
                row[name] = int(values[position] or 0)
                position += 1
            elif how in ("sum", "avg"):
                total, count = values[position], int(values[position + 1] or 0)
                position += 2
                row[name] = None if count == 0 else _total(how, total, count, field, connection)
            else:
                row[name] = _convert(values[position], field, connection)
                position += 1
        rows.append(row)
    return rows


def _source(rollup: Declared, aggregate: Any) -> Any:
    (source,) = aggregate.source_expressions
    return rollup.model._meta.get_field(source.name)


def _total(how: str, total: Any, count: int, field: Any, connection: Any) -> Any:
    internal = field.get_internal_type()
    if how == "avg":
        if connection.vendor == "postgresql":  # divided by the database, as AVG() does
            return total if internal == "DecimalField" else float(total)
        if internal == "DecimalField":
            return Decimal(str(total)) / count
        return float(total) / count
    if internal == "DecimalField":
        return _convert(total, field, connection)
    if internal == "FloatField":
        return float(total)
    return int(total)


class _Typed:
    """What Django's converters look at: an expression with an output field."""

    def __init__(self, field: Any) -> None:
        self.output_field = field


def _convert(value: Any, field: Any, connection: Any) -> Any:
    if value is None:
        return None
    typed = _Typed(field.target_field if field.is_relation else field)
    converters = [
        *connection.ops.get_db_converters(typed),
        *typed.output_field.get_db_converters(connection),
    ]
    for converter in converters:
        value = converter(value, typed, connection)
    places = getattr(typed.output_field, "decimal_places", None)
    if isinstance(value, Decimal | float) and places is not None:
        value = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
    return value


@dataclass
class Difference:
    """A bucket where the rollup and the full query disagree."""

    bucket: dict[str, Any]
    stored: dict[str, Any] | None
    computed: dict[str, Any] | None

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v!r}" for k, v in self.bucket.items()) or "(all rows)"
        if self.stored is None:
            return f"{where}: missing from the rollup (full query: {self.computed})"
        if self.computed is None:
            return f"{where}: in the rollup only ({self.stored})"
        changed = {
            k: (self.stored[k], self.computed[k])
            for k in self.computed
            if not _close(self.stored[k], self.computed[k])
        }
        return where + ": " + ", ".join(f"{k} {a!r} != {b!r}" for k, (a, b) in changed.items())


def _close(a: Any, b: Any, *, exact: bool = False) -> bool:
    if a is None or b is None:
        return a is b
    if exact:
        return bool(a == b)
    if isinstance(a, float | Decimal) or isinstance(b, float | Decimal):
        return math.isclose(float(a), float(b), rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-9)
    return bool(a == b)


def differences(rollup: Declared, using: str | None = None) -> list[Difference]:
    """Where ``rollup`` (folded) differs from the full ``GROUP BY`` query."""
    using = using or conf.database()
    # PostgreSQL adds decimals exactly; SQLite adds them as floats, in another order
    exact = connections[using].vendor == "postgresql"
    stored = {tuple(r[k] for k in rollup.keys): r for r in read(rollup, using=using)}
    computed = {tuple(r[k] for k in rollup.keys): r for r in full(rollup, using)}
    found = []
    for key in sorted(set(stored) | set(computed), key=lambda k: [_sortable(v) for v in k]):
        a, b = stored.get(key), computed.get(key)
        aggregates = list(rollup.aggregates)
        if (
            a is not None
            and b is not None
            and all(
                _close(a[n], b[n], exact=exact and not isinstance(a[n], float)) for n in aggregates
            )
        ):
            continue
        bucket = dict(zip(rollup.keys, key, strict=True))
        found.append(
            Difference(
                bucket,
                None if a is None else {n: a[n] for n in aggregates},
                None if b is None else {n: b[n] for n in aggregates},
            )
        )
    return found


def verify(rollup: Declared, using: str | None = None, *, repair: bool = True) -> list[Difference]:
    """The differences of ``rollup`` from the full query; with ``repair``, fill it again."""
    using = using or conf.database()
    found = differences(rollup, using)
    if found and repair and state(rollup, using) == MAINTAINED:
        fill(rollup, using)
    return found


@dataclass
class Status:
    name: str
    base_table: str
    state: str
    buckets: int | None
    pending: int | None


def status(rollups: Iterable[Declared], using: str | None = None) -> list[Status]:
    """Each rollup's state, its number of buckets and of differences not folded yet."""
    using = using or conf.database()
    connection = connections[using]
    found = []
    for rollup in rollups:
        kept = state(rollup, using)
        buckets = pending = None
        if kept in (MAINTAINED, OUTDATED):
            compiled = _compiled(rollup, using)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {compiled.table}")
                buckets = int(cursor.fetchone()[0])
                cursor.execute(f"SELECT count(*) FROM {compiled.delta}")
                pending = int(cursor.fetchone()[0])
        found.append(Status(rollup.name, rollup.model._meta.db_table, kept, buckets, pending))
    return found


__all__ = [
    "MAINTAINED",
    "NOT_MADE",
    "OUTDATED",
    "RECOMPUTED",
    "Difference",
    "Status",
    "SyncReport",
    "differences",
    "fill",
    "fold",
    "full",
    "make",
    "read",
    "state",
    "status",
    "supported",
    "sync",
    "verify",
]
