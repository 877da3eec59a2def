"""One leading builder per project and database: a PostgreSQL advisory lock.

A site on several machines runs a long-lived builder (``doit auto``, ``gencharts -s``) on
two or more of them. With ``CHARTBUILD_LEADER = "postgres"`` (the default on
PostgreSQL), one of them builds: the one that holds the session-level advisory lock
``pg_try_advisory_lock(key)`` on a connection of its own. The key is derived from the
database's name as the server knows it (and ``CHARTBUILD_LEADER_KEY``), so every machine
of one project contends for one lock however it reaches the server. The others are
standbys: they say who leads, once, and try again every ``CHARTBUILD_LEADER_RETRY``
seconds. The lock lives as long as the leader's session: a leader that is killed is
replaced within that interval; one whose machine or network fails, once the server's
TCP keepalives (set on that session) have ended it, about 11 s later. A leader that finds
its session gone before a build takes the lock again, or becomes a standby.

The leader names itself in its session's ``application_name`` (since when, pid, host),
which is what standbys report.

Every build against the database, from any machine, also holds a second advisory lock
while it runs (:func:`building`, :func:`hold_build`): the leader's builds, one-off ``doit``
runs, ``manage.py gen`` and the ``"build"`` hook. So two builds never publish at once (a
build confirms that its session still holds the lock before it publishes:
:func:`confirm_build`), and a one-off run waits for the build under way (up to
``CHARTBUILD_LOCK_TIMEOUT`` seconds; ``0`` fails at once, naming the build it met), then
builds. It is taken after the state directory's own lock, by every builder in that order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.db import DatabaseError, connections

from chartbuild import conf
from chartbuild.exceptions import ChartbuildError, LockTimeout, first_line

logger = logging.getLogger(__name__)

NAME_PREFIX = "chartbuild leader"
BUILD_PREFIX = "chartbuild build"


class LeadershipLost(ChartbuildError):
    """This builder no longer holds the lead: another one builds now."""


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


def _session(using: str) -> Any:
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


def _session_name(prefix: str, since: dt.datetime | None) -> str:
    """How a session names its holder to the others (at most 63 characters)."""
    moment = (since or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{prefix} {moment} {os.getpid()} {socket.gethostname()}"[:63]


def for_builder(
    using: str | None = None, *, say: Callable[[str], None] | None = None
) -> Leadership | None:
    """The :class:`Leadership` a long-lived builder must hold; None when the build lock of
    its state directory is enough (``CHARTBUILD_LEADER = "file"``)."""
    using = using or conf.database()
    if not elects(using):
        return None  # on another database, check E018 says what is wrong
    return Leadership(using, retry=conf.leader_retry(), say=say)


class Leadership:
    """Holding, checking and waiting for the lead, on a connection of its own."""

    def __init__(
        self, using: str, *, retry: float = 2.0, say: Callable[[str], None] | None = None
    ) -> None:
        self.using = using
        self.retry = retry
        self.say = say or (lambda text: logger.warning("%s", text))
        self.key = 0  # known once connected
        self.since: dt.datetime | None = None
        self._connection: Any = None
        self._said = ""

    # -- the lock ---------------------------------------------------------------------

    def lead(self) -> bool:
        """Whether this builder leads now: it holds the lock, or has just taken it."""
        return self.holds() or self._take()

    def holds(self) -> bool:
        """Whether this builder's session still holds the lock (asked of the server)."""
        if self._connection is None:
            return False
        held = _holds(self._connection, self.key)
        if held is None:  # the session is gone, and the lock with it
            self._disconnect()
            return False
        if not held:
            self.since = None
        return held

    def _connect(self) -> Any:
        if self._connection is None:
            self._connection = _session(self.using)
            self.key = key(self._connection)
        return self._connection

    def _take(self) -> bool:
        try:
            self._connect()
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                (taken,) = cursor.fetchone()
                if taken:
                    self.since = dt.datetime.now(dt.UTC)
                    cursor.execute(
                        "SELECT set_config('application_name', %s, false)", [self.name()]
                    )
        except Exception as exc:
            self._disconnect()
            self._once(
                f"cannot reach database {self.using!r} to elect the builder ({first_line(exc)});"
                f" trying again every {self.retry:g} s"
            )
            return False
        return bool(taken)

    def name(self) -> str:
        """How this builder names itself to the others (at most 63 characters)."""
        return _session_name(NAME_PREFIX, self.since)

    def leader(self) -> str:
        """Who leads, as the leader names itself ("nobody" if no builder holds the lock)."""
        try:
            return describe(current(self._connect(), self.key))
        except Exception as exc:
            self._disconnect()
            return f"unknown ({exc})"

    def release(self) -> None:
        """Give the lead up (closing the session releases the lock)."""
        self.since = None
        self._disconnect()

    def _disconnect(self) -> None:
        wrapper, self._connection = self._connection, None
        if wrapper is not None:
            with contextlib.suppress(Exception):  # it may be broken already
                wrapper.close()

    def _once(self, text: str) -> None:
        if text != self._said:
            self.say(text)
        self._said = text

    # -- for builders -----------------------------------------------------------------

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Wait to lead: try now, then every ``retry`` seconds. False if ``stop`` was set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if self.lead():
                self._once(f"leading: this builder builds ({self.name()})")
                return True
            if self._connection is not None:  # else the database is unreachable, said so
                self._once(
                    f"standby: {self.leader()} builds; trying to lead every {self.retry:g} s"
                )
            stop.wait(self.retry)
        return False

    def confirm(self) -> None:
        """Before a build: still the leader, or the lead taken again.

        Raises :class:`LeadershipLost` if another builder leads now.
        """
        if self.holds():
            return
        if self._take():
            self._once(f"leading again: this builder builds ({self.name()})")
            return
        if self._connection is None:
            raise LeadershipLost(
                f"this builder lost its session with database {self.using!r}, and the lead"
                " with it: it builds again once it leads again"
            )
        raise LeadershipLost(f"this builder lost the lead: {self.leader()} builds now")


# -- the build lock ---------------------------------------------------------------------

_build_guard = threading.Lock()
#: The session holding the database's build lock for this process, if it holds it.
_build_session: Any = None
#: And the lock's key.
_build_key = 0


def hold_build(timeout: float, using: str | None = None) -> bool:
    """Take the database's build lock for this process, unless it holds it already.

    Returns whether it was taken now (False too when builders are not elected by
    PostgreSQL: ``CHARTBUILD_LEADER = "file"``). Held until :func:`release_build`, or the
    process's end. Raises :class:`~chartbuild.exceptions.LockTimeout` naming the build
    under way if it runs longer than ``timeout`` seconds.
    """
    global _build_session, _build_key
    using = using or conf.database()
    if not elects(using):
        return False
    with _build_guard:
        if _build_session is not None:
            return False
        try:
            wrapper = _session(using)
            # confirmed, and closed, from whichever thread publishes or ends the build
            wrapper.inc_thread_sharing()
            lock_key = key(wrapper, "chartbuild-build")
        except DatabaseError as exc:
            raise ChartbuildError(
                f"cannot reach database {using!r} to take its build lock: {first_line(exc)}"
            ) from exc
        try:
            _wait_for_build_lock(wrapper, lock_key, using, timeout)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                wrapper.close()
            if isinstance(exc, DatabaseError):
                raise ChartbuildError(
                    f"lost database {using!r} while waiting for its build lock: {first_line(exc)}"
                ) from exc
            raise
        _build_session, _build_key = wrapper, lock_key
        return True


def confirm_build() -> None:
    """Before a build publishes: its session still holds the database's build lock.

    The server may have ended that session during the build (an administrator, a network
    failure), and another build may then have started. Raises :class:`ChartbuildError`
    (and lets the lock go) if so. Nothing to confirm for a process that does not hold it.
    """
    with _build_guard:
        wrapper, lock_key = _build_session, _build_key
    if wrapper is None or _holds(wrapper, lock_key):
        return
    release_build()
    raise ChartbuildError(
        f"this build lost the build lock of database {wrapper.alias!r} (the server ended its"
        " session): another build may be running, so nothing was published. The next build"
        " publishes the outputs."
    )


def _wait_for_build_lock(wrapper: Any, lock_key: int, using: str, timeout: float) -> None:
    name = _session_name(BUILD_PREFIX, None)
    deadline = time.monotonic() + max(timeout, 0)
    waited = False
    with wrapper.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_key])
            if cursor.fetchone()[0]:
                cursor.execute("SELECT set_config('application_name', %s, false)", [name])
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


def release_build() -> None:
    """Give the database's build lock back (closing its session releases it)."""
    global _build_session
    with _build_guard:
        wrapper, _build_session = _build_session, None
    if wrapper is not None:
        with contextlib.suppress(Exception):
            wrapper.close()


@contextlib.contextmanager
def building(timeout: float, using: str | None = None) -> Iterator[None]:
    """Hold the database's build lock for one build (see :func:`hold_build`)."""
    taken = hold_build(timeout, using)
    try:
        yield
    finally:
        if taken:
            release_build()


def current(wrapper: Any, lock_key: int) -> dict[str, Any] | None:
    """The session holding ``lock_key``: its ``application_name``, host address and pid."""
    with wrapper.cursor() as cursor:
        cursor.execute(
            "SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.classid = %s AND l.objid = %s",
            _halves(lock_key),
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


def _holds(wrapper: Any, lock_key: int) -> bool | None:
    """Whether ``wrapper``'s session holds ``lock_key`` (None: the session is gone)."""
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND granted"
                " AND locktype = 'advisory' AND objsubid = 1"
                " AND classid = %s AND objid = %s",
                _halves(lock_key),
            )
            return cursor.fetchone() is not None
    except Exception:
        return None


def _halves(lock_key: int) -> list[int]:
    """A bigint advisory key as ``pg_locks`` shows it: ``classid`` (high), ``objid`` (low)."""
    unsigned = lock_key & 0xFFFFFFFFFFFFFFFF
    return [unsigned >> 32, unsigned & 0xFFFFFFFF]
