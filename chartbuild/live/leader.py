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
which is what standbys report. It renews a lease while it leads: a query on its leader
session every third of ``CHARTBUILD_LEADER_LEASE`` seconds, from a thread of its own. A
leader frozen while still connected (a stopped process, a paused VM keeps its TCP
sessions) stops renewing; a standby that finds the leader's session idle for longer than
the lease ends that session (``pg_terminate_backend``), which lets both of its locks go,
and leads (:meth:`Leadership.wait`).

Every build against the database, the leader's included, also holds the database's build
lock while it runs (:mod:`chartbuild.build.dblock`): the leader's on its leader session
(:attr:`Leadership.session`), so that a leader whose session ends (killed, cut off, or
ended by the server or a standby) lets go of both at once, and its successor waits for
no build it left behind. Its builds use no other connection than their task threads'.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from chartbuild import conf
from chartbuild.build.dblock import (
    NAME_PREFIX,
    current,
    describe,
    elects,
    halves,
    holds,
    key,
    session,
    session_name,
)
from chartbuild.exceptions import ChartbuildError, first_line

logger = logging.getLogger(__name__)


class LeadershipLost(ChartbuildError):
    """This builder no longer holds the lead: another one builds now."""


def for_builder(
    using: str | None = None, *, say: Callable[[str], None] | None = None
) -> Leadership | None:
    """The :class:`Leadership` a long-lived builder must hold; None when the build lock of
    its state directory is enough (``CHARTBUILD_LEADER = "file"``)."""
    using = using or conf.database()
    if not elects(using):
        return None  # on another database, check E018 says what is wrong
    return Leadership(using, retry=conf.leader_retry(), lease=conf.leader_lease(), say=say)


class Leadership:
    """Holding, checking and waiting for the lead, on a connection of its own."""

    def __init__(
        self,
        using: str,
        *,
        retry: float = 2.0,
        lease: float = 10.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.using = using
        self.retry = retry
        self.lease = lease
        self.say = say or (lambda text: logger.warning("%s", text))
        self.key = 0  # known once connected
        self.since: dt.datetime | None = None
        self._connection: Any = None
        self._said = ""
        self._renewing: threading.Event | None = None

    # -- the lock ---------------------------------------------------------------------

    def lead(self) -> bool:
        """Whether this builder leads now: it holds the lock, or has just taken it."""
        return self.holds() or self._take()

    def holds(self) -> bool:
        """Whether this builder's session still holds the lock (asked of the server)."""
        if self._connection is None:
            return False
        held = holds(self._connection, self.key)
        if held is None:  # the session is gone, and the lock with it
            self._disconnect()
            return False
        if not held:
            self.since = None
        return held

    def _connect(self) -> Any:
        if self._connection is None:
            wrapper = session(self.using)
            wrapper.inc_thread_sharing()  # its builds confirm their lock from their threads
            self._connection = wrapper
            self.key = key(wrapper)
        return self._connection

    @property
    def session(self) -> Any:
        """The leader's session (None while not connected): its builds take the database's
        build lock on it."""
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
                    self._renew()
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
        return session_name(NAME_PREFIX, self.since)

    def leader(self) -> str:
        """Who leads, as the leader names itself ("nobody" if no builder holds the lock)."""
        try:
            return describe(current(self._connect(), self.key))
        except Exception as exc:
            self._disconnect()
            return f"unknown ({exc})"

    def release(self) -> None:
        """Give the lead up: unlock at once, then close the session.

        Closing alone would release the lock only once the server's backend has exited,
        a moment later, and a successor that tried in that moment would wait a retry.
        """
        self.since = None
        if self._connection is not None:
            # a session that is gone holds nothing
            with contextlib.suppress(Exception), self._connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock_all()")
        self._disconnect()

    def _renew(self) -> None:
        """While this session leads, run a query on it every third of the lease (from a
        thread: a build may take longer than the lease), so that standbys see it live."""
        if self._renewing is not None:
            self._renewing.set()
        stop = self._renewing = threading.Event()
        wrapper = self._connection

        def renew() -> None:
            while not stop.wait(self.lease / 3):
                try:
                    with wrapper.cursor() as cursor:
                        cursor.execute("SELECT 1")
                except Exception:
                    return  # the session is gone: the builder finds out before its build

        threading.Thread(target=renew, name="chartbuild-lease", daemon=True).start()

    def _end_lapsed(self) -> None:
        """End the session of a leader that has not renewed its lease for longer than it
        lasts (frozen, yet still connected), so that this builder may lead."""
        wrapper = self._connection
        with wrapper.cursor() as cursor:
            cursor.execute(
                "SELECT a.pid, a.application_name,"
                " extract(epoch FROM now() - a.state_change) FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                " AND l.classid = %s AND l.objid = %s AND a.state <> 'active'",
                halves(self.key),
            )
            row = cursor.fetchone()
            if row is None or float(row[2]) <= self.lease:
                return
            pid, name, idle = row
            # waits (up to 5 s) for the session to end, so its locks are free to take now
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        holder = describe({"name": name, "pid": pid, "address": ""})
        self.say(
            f"the leader ({holder}) has not renewed its lease for {float(idle):.0f} s"
            f" (CHARTBUILD_LEADER_LEASE = {self.lease:g}): its session was ended"
        )

    def _disconnect(self) -> None:
        if self._renewing is not None:
            self._renewing.set()
            self._renewing = None
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
            if self._connection is not None:
                try:
                    self._end_lapsed()
                except Exception as exc:
                    logger.warning("cannot check the leader's lease: %s", first_line(exc))
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
