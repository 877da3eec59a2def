"""Ctrl-C and SIGTERM: stop a build at once, even in the middle of a database query.

Python runs a signal handler only between two bytecodes of the main thread, so a
builder blocked in a long SQLite query (or a PostgreSQL one) would not stop until the
query ends. :func:`install` makes both signals raise ``KeyboardInterrupt`` and, from a
helper thread woken by the signal itself (``signal.set_wakeup_fd``), interrupts the
queries of every database connection of the process: SQLite's ``interrupt()``,
PostgreSQL's ``cancel()``. The main thread then returns from its query and stops, and no
query of a worker thread goes on running on the server after the process is gone.
Should the process still be there 0.7 s later (its exit held up by a loaded machine or a
thread stuck in a library), it is ended as by a kill, which every build survives.

:func:`requested` tells a ``KeyboardInterrupt`` the user asked for from one a chart
function raised by itself (which fails only that chart). A process stopped so says it in
one line (``chartbuild: stopped by SIGTERM...``), not with a traceback; its build's
summary names what was interrupted (:mod:`chartbuild.build.progress`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

_requested = threading.Event()
#: The signal that asked this process to stop (``SIGINT``: Ctrl-C).
_received: int | None = None
_installed = False
#: The wakeup socket pair: kept for the life of the process (closing it would end the
#: helper thread and leave the signal module writing to a closed descriptor).
_sockets: tuple[socket.socket, socket.socket] | None = None


#: Seconds the process may take to stop after Ctrl-C or SIGTERM before it is ended.
DEADLINE = 0.7


def _exit(code: int) -> NoReturn:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def requested() -> bool:
    """Whether Ctrl-C or SIGTERM was received since :func:`install`."""
    return _requested.is_set()


def _raise(signum: int, frame: Any) -> None:
    global _received
    _received = signum
    _requested.set()
    raise KeyboardInterrupt


def stopped_by() -> str:
    """What stopped this process, as a person says it ("" while nothing has)."""
    if _received is None:
        return ""
    return "Ctrl-C" if _received == signal.SIGINT else signal.Signals(_received).name


def _said_once(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """``sys.excepthook``: a stop that was asked for is one line, not a traceback, and
    the process exits with 128 + the signal's number, as at the deadline."""
    if not (issubclass(kind, KeyboardInterrupt) and requested() and _received is not None):
        _previous_hook(kind, value, tb)
        return
    sys.stderr.write(
        f"chartbuild: stopped by {stopped_by()}; what was being built keeps its previous"
        " outputs, and the next build makes it\n"
    )
    leave(128 + _received)


#: What a stopped process does first as it leaves (:func:`on_leave`), newest first.
_leaving: list[Callable[[], None]] = []


def on_leave(callback: Callable[[], None]) -> None:
    """Have a stopped process call ``callback`` as it leaves, before its exit functions:
    the render workers are ended there, which ``multiprocessing``'s exit function would
    otherwise wait for."""
    if callback not in _leaving:
        _leaving.append(callback)


def leave(code: int) -> NoReturn:
    """End this process now that it has stopped: what :func:`on_leave` asked, then its
    exit functions (the build lock, logging), and not Python's long way out, which would
    wait for the render workers to finish what they draw and collect every object of a
    long-lived builder."""
    for callback in reversed(_leaving):
        with contextlib.suppress(Exception):
            callback()
    atexit._run_exitfuncs()
    _exit(code)


_previous_hook = sys.excepthook


def install() -> None:
    """From the main thread: Ctrl-C and SIGTERM stop this process's build at once."""
    global _installed, _sockets
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)
    global _previous_hook
    _previous_hook, sys.excepthook = sys.excepthook, _said_once
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    try:
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except ValueError:  # another owner of the wakeup fd: the handlers still work
        reader.close()
        writer.close()
        return
    _sockets = (reader, writer)
    from django.db import connections
    from django.db.backends.signals import connection_created

    # Every connection of this process, whatever its thread: a query left running on the
    # server after the process is gone would hold its session (and its locks).
    opened: weakref.WeakSet[Any] = weakref.WeakSet(connections[alias] for alias in connections)
    connection_created.connect(
        lambda sender, connection, **kwargs: opened.add(connection),
        weak=False,
        dispatch_uid="chartbuild.build.interrupts",
    )
    stops = {int(signal.SIGINT), int(signal.SIGTERM)}

    def interrupt_queries() -> None:
        while data := reader.recv(64):
            received = stops.intersection(data)
            if received:
                # Whatever holds the process up past the deadline (a loaded machine, a
                # thread stuck in a library, a cancel request the server is slow to
                # answer), it ends then: as after a kill, the next build repairs what this
                # one left. The clock starts before the cancels, which may take time.
                code = 128 + min(received)
                deadline = threading.Timer(DEADLINE, _exit, [code])
                deadline.daemon = True
                deadline.start()
                # Each connection's cancel in a thread of its own: one slow cancel
                # request does not hold up the others.
                for wrapper in list(opened):
                    threading.Thread(
                        target=_cancel, args=(wrapper,), name="chartbuild-cancel", daemon=True
                    ).start()

    threading.Thread(target=interrupt_queries, name="chartbuild-interrupt", daemon=True).start()


def _cancel(wrapper: Any) -> None:
    """Stop the query ``wrapper``'s connection is running, if any."""
    raw = getattr(wrapper, "connection", None)
    if raw is None:
        return
    with contextlib.suppress(Exception):
        if wrapper.vendor == "sqlite":
            raw.interrupt()
        elif hasattr(raw, "cancel_safe"):  # psycopg >= 3.2
            raw.cancel_safe(timeout=1.0)
        elif hasattr(raw, "cancel"):
            raw.cancel()
