"""Database connections of long-lived builders (``doit auto``, ``gencharts -s``).

Django opens a connection per thread and never reopens a broken one by itself in a
process that serves no requests: after a server restart or ``pg_terminate_backend`` every
query of ``doit auto`` would fail for ever. An SQLite file replaced under a running
process is worse: its connection keeps reading the old, deleted file without an error.

:func:`refresh` is called before every build. It closes connections that are broken or
past ``CONN_MAX_AGE`` (as Django does around each request) and SQLite connections whose
file was replaced, so the build's first query connects afresh. It returns the aliases
whose database file was replaced: everything may have changed there, so the caller asks
for a full rebuild.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)

#: Attribute of an SQLite connection: ``(st_dev, st_ino)`` of its file when it connected.
FILE = "_chartbuild_file"


def _identity(connection: Any) -> tuple[int, int] | None:
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor != "sqlite" or not name or name == ":memory:" or "mode=memory" in name:
        return None
    try:
        stat = os.stat(name)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _remember_file(sender: Any, connection: Any, **kwargs: Any) -> None:
    setattr(connection, FILE, _identity(connection))


def watch() -> None:
    """Remember, from now on, which file each new SQLite connection opened."""
    connection_created.connect(_remember_file, dispatch_uid="chartbuild.live.reconnect")
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not hasattr(connection, FILE):
            _remember_file(None, connection)


def refresh() -> list[str]:
    """Close broken, expired and replaced-file connections; return the replaced aliases."""
    replaced = []
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or connection.in_atomic_block:
            continue
        known = getattr(connection, FILE, None)
        if known is not None and _identity(connection) != known:
            logger.warning(
                "the database file of %r (%s) was replaced: reconnecting, and rebuilding "
                "everything",
                connection.alias,
                connection.settings_dict["NAME"],
            )
            connection.close()
            replaced.append(connection.alias)
            continue
        connection.close_if_unusable_or_obsolete()
    if replaced:
        from django.contrib.contenttypes.models import ContentType

        ContentType.objects.clear_cache()  # the new file may number them otherwise
    return replaced
