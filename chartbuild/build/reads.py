"""Which models a chart really reads, found from the SQL its function runs.

A chart is rebuilt when a model it declares in ``models=`` changes. One that reads a
model it did not declare would silently go stale when that model changes. While a chart
or number function runs, :func:`recording` installs an execute wrapper
(``connection.execute_wrapper``) on every database connection and keeps the SQL; the
identifiers in it that name a table are the tables it read, reported as the models
that own them (:func:`chartbuild.declare.tables.owners`).

A read is *undeclared* when its table is none of the tables of the declared models
(:func:`chartbuild.declare.tables.read_by`: their own tables, their parents' and their
automatic many-to-many tables). It prints a warning naming the chart and the model, or
fails the chart with ``CHARTBUILD_STRICT_READS = True``; ``manage.py check`` reports the
ones the last build recorded (``chartbuild.W004``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from django.db import connections

from chartbuild.declare import tables

_QUOTED = r'"([^"]+)"|`([^`]+)`|\[([^\]]+)\]'
#: Where SQL names a table: after FROM or JOIN (quoted or bare), or qualifying a column
#: ("shop_order"."status"). A column that happens to share a table's name is no read.
TABLE = re.compile(
    rf"\b(?:FROM|JOIN)\s+(?:{_QUOTED}|([A-Za-z_][\w$]*))|(?:{_QUOTED})\s*\.", re.IGNORECASE
)


class Queries:
    """An execute wrapper that keeps every SQL statement it sees."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements.append(sql)
        return execute(sql, params, many, context)

    def tables(self) -> set[str]:
        """The names of the tables of installed models that the statements mention."""
        known = tables.owners()
        found = set()
        for sql in self.statements:
            for match in TABLE.finditer(sql):
                name = next(group for group in match.groups() if group is not None)
                if name in known:
                    found.add(name)
        return found

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
