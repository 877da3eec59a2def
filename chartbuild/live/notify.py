"""Waking ``doit auto`` from PostgreSQL: ``LISTEN`` for the capture triggers' ``NOTIFY``.

The PostgreSQL capture triggers (:mod:`chartbuild.capture.triggers`) send ``NOTIFY chartbuild``
with the table's name; PostgreSQL delivers it when the writing transaction commits, and
never if it rolls back. So a raw ``UPDATE`` in ``psql``, a cron job in another language
or a web process on another machine wakes every listening builder at commit, with no
hook in the writer.

:class:`Listener` holds a connection of its own (builds use Django's), in a daemon
thread. When that connection breaks (a server restart, ``pg_terminate_backend``), it
says so once, retries every ``retry`` seconds, and wakes the watcher once it listens
again: notifications sent meanwhile were lost, and the build finds their changes.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

from chartbuild.capture.triggers import CHANNEL
from chartbuild.exceptions import first_line

logger = logging.getLogger(__name__)


class Listener:
    """Calls ``on_wake`` for each ``NOTIFY`` on ``channel`` in database ``using``."""

    def __init__(
        self,
        using: str,
        *,
        channel: str = CHANNEL,
        retry: float = 1.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.using = using
        self.channel = channel
        self.retry = retry
        self.say = say or (lambda text: logger.warning("%s", text))
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: Any = None
        self.listening = threading.Event()

    @staticmethod
    def supported(using: str) -> bool:
        return connections[using].vendor == "postgresql"

    def serve(self, on_wake: Callable[[], None]) -> None:
        """Listen from a daemon thread until :meth:`close`."""
        self._thread = threading.Thread(
            target=self._loop, args=(on_wake,), name="chartbuild-listen", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop listening: the listening thread closes its own connection within 0.5 s (a
        daemon thread: stopping ``doit auto`` does not wait for it)."""
        self._closed.set()

    def _connect(self) -> Any:
        self._connection = connections.create_connection(self.using)
        self._connection.ensure_connection()
        with self._connection.cursor() as cursor:
            cursor.execute(f"LISTEN {self._connection.ops.quote_name(self.channel)}")
        return self._connection.connection

    def _disconnect(self) -> None:
        wrapper, self._connection = self._connection, None
        if wrapper is not None:
            with contextlib.suppress(Exception):  # it is broken already; nothing to keep
                wrapper.close()

    def _loop(self, on_wake: Callable[[], None]) -> None:
        lost = False
        while not self._closed.is_set():
            try:
                raw = self._connect()
            except Exception as exc:  # any failure means: try again later
                self._disconnect()
                if not lost:
                    self.say(
                        f"cannot LISTEN on database {self.using!r} ({first_line(exc)}); "
                        f"retrying every {self.retry:g} s, polling meanwhile"
                    )
                    lost = True
                self._closed.wait(self.retry)
                continue
            self.listening.set()
            if lost:
                self.say(f"listening on database {self.using!r} again")
                lost = False
                on_wake()  # notifications sent meanwhile are lost; their changes are not
            try:
                self._receive(raw, on_wake)
            except Exception as exc:  # the connection broke
                if not self._closed.is_set():
                    self.say(
                        f"lost the LISTEN connection to database {self.using!r} "
                        f"({first_line(exc)}); reconnecting"
                    )
                    lost = True
            finally:
                self.listening.clear()
                self._disconnect()

    def _receive(self, raw: Any, on_wake: Callable[[], None]) -> None:
        """Wait for notifications on the raw connection (psycopg 3 or psycopg2)."""
        while not self._closed.is_set():
            if callable(getattr(raw, "notifies", None)):  # psycopg 3
                for _ in raw.notifies(timeout=0.5):
                    on_wake()
                continue
            readable, _, _ = select.select([raw], [], [], 0.5)  # psycopg2
            if readable:
                raw.poll()
                if raw.notifies:
                    raw.notifies.clear()
                    on_wake()
