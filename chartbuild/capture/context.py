"""Who wrote: a label the change records of a block's writes carry (``explain`` shows it).

::

    from chartbuild import writes_by

    with writes_by("nightly import"):
        Order.objects.filter(...).update(status="shipped")

:class:`chartbuild.middleware.WritesByUserMiddleware` does the same for each request,
with the signed-in user's name. A block with no write costs nothing: the label reaches
the database only before the first statement that writes (an execute wrapper looks at
each statement's first words).

- PostgreSQL: the label is the session setting ``chartbuild.context``, which the
  capture triggers read into each record; it is cleared when the block ends. A
  transaction rolled back takes its setting with it: the next write sets it again.
- SQLite: triggers cannot read a connection's state, so after each write the newest
  change record gets the label if it has none (SQLite has one writer at a time).
- Other databases (``CHARTBUILD_CAPTURE = "orm"``): the label is not recorded.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError, connections

from chartbuild import conf
from chartbuild.capture import triggers
from chartbuild.models import Change

logger = logging.getLogger(__name__)

#: The PostgreSQL setting the triggers read.
SETTING = "chartbuild.context"
#: Longest label kept (the column's size).
MAX_LENGTH = Change._meta.get_field("context").max_length or 200
WRITES = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE|REPLACE|MERGE|TRUNCATE|WITH|COPY)\b", re.I)


class _Label:
    """The execute wrapper of one :func:`writes_by` block on one connection."""

    def __init__(self, label: str) -> None:
        self.label = label[:MAX_LENGTH]
        self.set_in_transaction: bool | None = None  # None: not set

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        connection = context["connection"]
        writes = bool(WRITES.match(sql))
        if writes and connection.vendor == "postgresql":
            self._set(connection)
        result = execute(sql, params, many, context)
        if writes and connection.vendor == "sqlite" and _watched(sql):
            self._mark_newest(connection)
        return result

    def _set(self, connection: Any) -> None:
        # set again after a transaction that set it ended (a rollback takes it back)
        if self.set_in_transaction is False or (
            self.set_in_transaction and connection.in_atomic_block
        ):
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, false)", [SETTING, self.label])
        self.set_in_transaction = connection.in_atomic_block

    def _mark_newest(self, connection: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Change._meta.db_table} SET context = %s WHERE id = "
                f"(SELECT MAX(id) FROM {Change._meta.db_table}) AND context = ''",
                [self.label],
            )

    def clear(self, connection: Any) -> None:
        if self.set_in_transaction is None or connection.connection is None:
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, '', false)", [SETTING])
        except DatabaseError:  # a failed transaction: its rollback takes the setting back
            logger.debug("could not clear %s", SETTING, exc_info=True)


def _watched(sql: str) -> bool:
    """Whether ``sql`` writes to a table charts read (so its trigger recorded it)."""
    match = triggers.WRITE.match(sql)
    return match is not None and match.group(1).lower() in triggers.watched_tables_cached()


@contextlib.contextmanager
def writes_by(label: str, using: str | None = None) -> Iterator[None]:
    """The writes of this block to the tables charts read carry ``label``."""
    connection = connections[using or conf.database()]
    wrapper = _Label(str(label))
    try:
        with connection.execute_wrapper(wrapper):
            yield
    finally:
        if connection.vendor == "postgresql":
            wrapper.clear(connection)
