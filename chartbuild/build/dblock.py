"""The database's build lock: one build at a time against a PostgreSQL database.

Every build against the database, from any machine (a long-lived builder's, one-off
``doit`` runs, ``manage.py gen`` and the ``"build"`` hook) holds a session-level advisory
lock while it runs (:class:`DatabaseLock`): a leading builder on its leader's session
(:mod:`chartbuild.live.leader`), which it keeps from build to build, so that the two
locks go together when that session ends; any other build on a connection of its own. So two builds
never publish at once (a build confirms that its session still holds the lock before it
publishes: :meth:`DatabaseLock.confirm`), and a one-off run waits for the build under way (up to
``CHARTBUILD_LOCK_TIMEOUT`` seconds; ``0`` fails at once, naming the build it met), then
builds. It is taken after the state directory's own lock (:mod:`.lock`), by every builder
in that order.

The sessions that hold chartbuild's advisory locks, this one and the leader's
(:mod:`chartbuild.live.leader`), name their holder in ``application_name`` (since when,
pid, host), which is how the others report who holds a lock. A lock is held with TCP
keepalives on its session: it dies with its holder's machine or network, not only with
its process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from typing import Any

from django.db import DatabaseError, connections

from chartbuild import conf
from chartbuild.exceptions import ChartbuildError, LockTimeout, first_line

logger = logging.getLogger(__name__)

NAME_PREFIX = "chartbuild leader"
BUILD_PREFIX = "chartbuild build"

#: The leader's connection: libpq finds a dead server within about 10 s, the server a
#: dead leader (host down, network cut) within about 11 s, which ends its session and so
#: releases the lock. Options of the database's own ``OPTIONS`` take precedence.
CLIENT_OPTIONS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10000,
}
SERVER_KEEPALIVES = (
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3"
)


def key(wrapper: Any, purpose: str = "chartbuild") -> int:
    """The advisory lock key of this database (as the server names it) and project
    (``CHARTBUILD_LEADER_KEY``): the same on every machine, however it reaches the server.

    ``purpose``: ``"chartbuild"`` for the lead, ``"chartbuild-build"`` for the build lock.
    """
    with wrapper.cursor() as cursor:
        cursor.execute(
            "SELECT hashtextextended(%s || ':' || current_database() || ':' || %s, 0)",
            [purpose, conf.leader_key()],
        )
        return int(cursor.fetchone()[0])


def session(using: str) -> Any:
    """A connection of its own to ``using``, with keepalives: a lock held on it dies with
    its holder's machine or network, not only with its process."""
    wrapper = connections.create_connection(using)
    options = {**CLIENT_OPTIONS, **wrapper.settings_dict.get("OPTIONS", {})}
    wrapper.settings_dict = {**wrapper.settings_dict, "OPTIONS": options}
    wrapper.ensure_connection()
    with wrapper.cursor() as cursor:
        cursor.execute(SERVER_KEEPALIVES)
    return wrapper


def elects(using: str) -> bool:
    """Whether builders of database ``using`` are elected, and build in turns, by it."""
    return conf.leader(using) == "postgres" and connections[using].vendor == "postgresql"


def session_name(prefix: str, since: dt.datetime | None) -> str:
    """How a session names its holder to the others (at most 63 characters)."""
    moment = (since or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{prefix} {moment} {os.getpid()} {socket.gethostname()}"[:63]


class DatabaseLock:
    """The database's build lock, held by one build on a session of its own (:meth:`take`)."""

    def __init__(self, wrapper: Any, lock_key: int, *, own: bool = True) -> None:
        self._wrapper: Any = wrapper
        self._key = lock_key
        #: Whether the session is the lock's own (closed to release it), or a leader's
        #: (kept: the lock is given back with ``pg_advisory_unlock``).
        self._own = own
        self._guard = threading.Lock()

    @classmethod
    def take(
        cls, timeout: float, using: str | None = None, *, on: Any = None
    ) -> DatabaseLock | None:
        """Wait up to ``timeout`` seconds for the build lock of database ``using``, on the
        session ``on`` (a leader's, shared between threads) or on a new one.

        None when builders are not elected by PostgreSQL (``CHARTBUILD_LEADER = "file"``).
        Raises :class:`~chartbuild.exceptions.LockTimeout` naming the build under way if it
        runs longer, :class:`ChartbuildError` if the database cannot be reached.
        """
        using = using or conf.database()
        if not elects(using):
            return None
        own = on is None
        try:
            wrapper = session(using) if own else on
            if own:
                # confirmed, and closed, from whichever thread publishes or ends the build
                wrapper.inc_thread_sharing()
            lock_key = key(wrapper, "chartbuild-build")
        except DatabaseError as exc:
            raise ChartbuildError(
                f"cannot reach database {using!r} to take its build lock: {first_line(exc)}"
            ) from exc
        try:
            _wait_for_build_lock(wrapper, lock_key, using, timeout, name=own)
        except BaseException as exc:
            if own:
                with contextlib.suppress(Exception):
                    wrapper.close()
            if isinstance(exc, DatabaseError):
                raise ChartbuildError(
                    f"lost database {using!r} while waiting for its build lock: {first_line(exc)}"
                ) from exc
            raise
        return cls(wrapper, lock_key, own=own)

    def confirm(self) -> None:
        """Before a build publishes: its session still holds the lock.

        The server may have ended that session during the build (an administrator, a
        network failure), and another build may then have started. Raises
        :class:`ChartbuildError` (and lets the lock go) if so.
        """
        with self._guard:
            wrapper = self._wrapper
        if wrapper is None:
            raise ChartbuildError("this build let its database build lock go: it may not publish")
        if holds(wrapper, self._key):
            return
        self.release()
        raise ChartbuildError(
            f"this build lost the build lock of database {wrapper.alias!r} (the server ended its"
            " session): another build may be running, so nothing was published. The next build"
            " publishes the outputs."
        )

    def release(self) -> None:
        """Give the lock back (closing its own session, or unlocking on a leader's); once."""
        with self._guard:
            wrapper, self._wrapper = self._wrapper, None
        if wrapper is None:
            return
        with contextlib.suppress(Exception):  # a session that is gone holds nothing
            if self._own:
                wrapper.close()
            else:
                with wrapper.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [self._key])


def _wait_for_build_lock(
    wrapper: Any, lock_key: int, using: str, timeout: float, *, name: bool = True
) -> None:
    """Take ``lock_key`` on ``wrapper``'s session; with ``name``, name the session after
    this build (a leader's session keeps the leader's name)."""
    session_title = session_name(BUILD_PREFIX, None)
    deadline = time.monotonic() + max(timeout, 0)
    waited = False
    with wrapper.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_key])
            if cursor.fetchone()[0]:
                if name:
                    cursor.execute(
                        "SELECT set_config('application_name', %s, false)", [session_title]
                    )
                return
            holder = describe(current(wrapper, lock_key))
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"another build ({holder}) against database {using!r} holds its build"
                    f" lock; it has not finished within {timeout:g} s"
                    " (CHARTBUILD_LOCK_TIMEOUT). Wait for it or stop it, then build again."
                )
            if not waited:
                logger.warning("waiting for the build of %s to finish", holder)
                waited = True
            time.sleep(0.1)


def current(wrapper: Any, lock_key: int) -> dict[str, Any] | None:
    """The session holding ``lock_key``: its ``application_name``, host address and pid."""
    with wrapper.cursor() as cursor:
        cursor.execute(
            "SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.classid = %s AND l.objid = %s",
            halves(lock_key),
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return {"name": row[0], "address": str(row[1] or "local"), "pid": row[2]}


def describe(session: dict[str, Any] | None) -> str:
    """``builder pid 123 on web-2 (since 2026-11-28T05:42:10Z)``, from a session's name."""
    if session is None:
        return "nobody"
    parts = str(session["name"]).split(" ")
    if str(session["name"]).startswith((NAME_PREFIX, BUILD_PREFIX)) and len(parts) >= 5:
        since, pid, host = parts[2], parts[3], " ".join(parts[4:])
        return f"builder pid {pid} on {host} (since {since})"
    return f"session {session['pid']} from {session['address']}"


def holds(wrapper: Any, lock_key: int) -> bool | None:
    """Whether ``wrapper``'s session holds ``lock_key`` (None: the session is gone)."""
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND granted"
                " AND locktype = 'advisory' AND objsubid = 1"
                " AND classid = %s AND objid = %s",
                halves(lock_key),
            )
            return cursor.fetchone() is not None
    except Exception:
        return None


def halves(lock_key: int) -> list[int]:
    """A bigint advisory key as ``pg_locks`` shows it: ``classid`` (high), ``objid`` (low)."""
    unsigned = lock_key & 0xFFFFFFFFFFFFFFFF
    return [unsigned >> 32, unsigned & 0xFFFFFFFF]
