"""Which models a chart really reads, found from the SQL its function runs.

A chart is rebuilt when a model it declares in ``models=`` changes. One that reads a
model it did not declare would silently go stale when that model changes. While a chart
or number function runs, :func:`recording` installs an execute wrapper
(``connection.execute_wrapper``) on every database connection and keeps the SQL; the
tables it names (parsed with ``sqlparse``, which ships with Django: after ``FROM`` and
``JOIN``, comma-separated lists and subqueries included, and the tables that qualify a
column) are the tables it read, reported as the models that own them
(:func:`chartbuild.declare.tables.owners`).

A read is *undeclared* when its table is none of the tables of the declared models
(:func:`chartbuild.declare.tables.read_by`: their own tables, their parents' and their
automatic many-to-many tables). It prints a warning naming the chart and the model, or
fails the chart with ``CHARTBUILD_STRICT_READS = True``; ``manage.py check`` reports the
ones the last build recorded (``chartbuild.W004``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import sqlparse
from django.db import connections
from sqlparse import sql as parsed
from sqlparse import tokens

from chartbuild.declare import tables
from chartbuild.declare.registry import resolve_model

#: The app whose tables are chartbuild's bookkeeping, not what a chart shows.
OWN_APP = "chartbuild"
#: Keywords that may stand between ``FROM`` and the table (``FROM ONLY t``, PostgreSQL).
BEFORE_TABLE = ("ONLY", "LATERAL")


@functools.lru_cache(maxsize=2048)
def tables_in(sql: str) -> frozenset[str]:
    """The names the statements of ``sql`` read as tables (and some aliases, which name
    no table of a model): after ``FROM`` and ``JOIN``, and qualifying a column."""
    found: set[str] = set()
    for statement in sqlparse.parse(sql):
        _walk(statement.tokens, found)
    return frozenset(found)


def _walk(items: Iterable[Any], found: set[str]) -> None:
    expecting = False  # the next item is a table (or a list of them)
    for item in items:
        if item.is_whitespace or item.ttype in tokens.Comment:
            continue
        if expecting:
            if item.ttype in tokens.Keyword and item.normalized in BEFORE_TABLE:
                continue
            expecting = False
            if isinstance(item, parsed.IdentifierList):
                for each in item.get_identifiers():
                    _table(each, found)
                continue
            if isinstance(item, parsed.Identifier | parsed.Parenthesis) or item.ttype in (
                tokens.Name,
                tokens.Literal.String.Symbol,
            ):
                _table(item, found)
                continue
        if item.ttype in tokens.Keyword and (
            item.normalized == "FROM" or item.normalized.endswith("JOIN")
        ):
            expecting = True
            continue
        if isinstance(item, parsed.Identifier) and item.get_parent_name():
            found.add(str(item.get_parent_name()))  # "shop_order"."status"
        if item.is_group:
            _walk(item.tokens, found)


def _table(item: Any, found: set[str]) -> None:
    """A table named after ``FROM`` or ``JOIN``: a name, or a subquery to look into."""
    if isinstance(item, parsed.Parenthesis):
        _walk(item.tokens, found)
    elif isinstance(item, parsed.Identifier):
        subquery = next((t for t in item.tokens if isinstance(t, parsed.Parenthesis)), None)
        if subquery is not None:
            _walk(subquery.tokens, found)
        elif item.get_real_name():
            found.add(str(item.get_real_name()))
    else:
        found.add(item.value.strip('"`[]'))


class Queries:
    """An execute wrapper that keeps every SQL statement it sees."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements.append(sql)
        return execute(sql, params, many, context)

    def tables(self) -> set[str]:
        """The names of the tables of installed models that the statements mention, but
        chartbuild's own (a rollup's reader looks up its state there)."""
        known = tables.owners()
        return {
            name
            for sql in self.statements
            for name in tables_in(sql)
            if name in known and not known[name].startswith(f"{OWN_APP}.")
        }

    def columns(self, table: str) -> set[str]:
        """The columns of ``table`` the statements name, qualified by the table's name (as
        Django writes them: ``"auth_user"."last_login"``; a column reached through an
        alias, ``U0."id"``, is not seen)."""
        pattern = re.compile(rf'(?:"{re.escape(table)}"|\b{re.escape(table)})\."?(\w+)"?')
        return {name for sql in self.statements for name in pattern.findall(sql)}

    def models(self) -> list[str]:
        """Labels of the models that own the tables read, sorted."""
        known = tables.owners()
        return sorted({known[table] for table in self.tables()})


@contextmanager
def recording() -> Iterator[Queries]:
    """Record the SQL every database connection runs in this thread inside the block."""
    recorder = Queries()
    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(recorder))
        yield recorder


def undeclared(read: Iterable[str], declared: Iterable[str]) -> list[str]:
    """The models of ``read`` whose tables none of the ``declared`` models covers."""
    covered: set[str] = set()
    for tables_of_model in tables.of_models(declared).values():
        covered |= tables_of_model
    owned_by = {label: table for table, label in tables.owners().items()}
    return sorted(label for label in read if owned_by.get(label) not in covered)


def message(task: str, models: Iterable[str]) -> str:
    """What a chart that read undeclared models is told."""
    names = ", ".join(models)
    return (
        f"{task} reads {names} but does not declare it in models=[...]: it is not rebuilt "
        f"when {names} changes. Add it to the chart's models."
    )


def undeclared_columns(
    recorder: Queries, declared: Iterable[tuple[str, Iterable[str]]]
) -> dict[str, list[str]]:
    """``{model: fields its queries read}`` of the fields a chart's ``columns=`` leaves out."""
    found = {}
    for model, fields in declared:
        meta = resolve_model(model)._meta
        by_column = {f.column: f.name for f in meta.local_concrete_fields}
        # the primary key counts rows (COUNT("id")): inserts and deletes always rebuild
        allowed = {by_column.get(name, name) for name in fields} | set(fields) | {meta.pk.name}
        names = {by_column[c] for c in recorder.columns(meta.db_table) if c in by_column}
        missing = sorted(n for n in names if n not in allowed)
        if missing:
            found[model] = missing
    return found


def columns_message(task: str, model: str, fields: Iterable[str]) -> str:
    """What a chart that read fields its ``columns=`` leaves out is told."""
    names = ", ".join(fields)
    return (
        f"{task} reads {names} of {model} but does not list it in columns=: an update of "
        f"{names} alone does not rebuild it. Add {names} to its columns."
    )
