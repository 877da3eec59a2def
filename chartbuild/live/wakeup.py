"""Waking a running ``doit auto``: one datagram on a local socket.

The hook sends a datagram after each commit; the watcher of the same state directory
receives it. Nothing touches the disk (a file touched on every commit makes the next
database ``fsync`` slower), a full queue means the watcher is awake already, and with
no watcher running sending is a no-op. On Linux the socket lives in the abstract
namespace, so it leaves no file behind; elsewhere it is a file in the temp directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

_sender: socket.socket | None = None


def address(state_dir: Path) -> str:
    """The socket address of the watcher of ``state_dir``."""
    key = hashlib.sha256(str(state_dir.absolute()).encode()).hexdigest()[:24]
    if sys.platform.startswith("linux"):
        return f"\0chartbuild-{key}"
    return str(Path(tempfile.gettempdir()) / f"chartbuild-{key}.sock")


def send(state_dir: Path) -> bool:
    """Wake the watcher of ``state_dir``. Returns whether one is listening.

    Raises :class:`OSError` only when the socket itself cannot be used.
    """
    global _sender
    if _sender is None:
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender.setblocking(False)
    try:
        _sender.sendto(b".", address(state_dir))
    except (FileNotFoundError, ConnectionRefusedError):
        return False  # no watcher is running
    except BlockingIOError:
        pass  # its queue is full: it is awake already
    return True


class Listener:
    """The watcher's end: receives wake-ups for ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.address = address(state_dir)
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.socket.bind(self.address)
        except OSError:
            if self.address.startswith("\0") or not _stale(self.address):
                self.socket.close()
                raise
            os.unlink(self.address)
            self.socket.bind(self.address)
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def pending(self) -> int:
        """How many wake-ups are queued (and take them off the queue)."""
        self.socket.setblocking(False)
        count = 0
        while True:
            try:
                self.socket.recv(64)
            except BlockingIOError:
                return count
            count += 1

    def serve(self, on_wake: Callable[[], None]) -> None:
        """Call ``on_wake`` for every wake-up, from a daemon thread, until :meth:`close`."""

        def loop() -> None:
            while not self._closed.is_set():
                try:
                    self.socket.recv(64)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if self._closed.is_set():
                    return  # woken by close(), not by a sender
                on_wake()

        self.socket.settimeout(0.2)
        self._thread = threading.Thread(target=loop, name="chartbuild-wakeup", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening: once this returns, nobody listens at the address any more.

        A thread blocked in ``recv`` keeps the socket (and its address) alive past
        ``close()``; shutting the socket down first wakes it at once.
        """
        self._closed.set()
        with contextlib.suppress(OSError):  # never connected, or closed already
            self.socket.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1)
        self.socket.close()
        if not self.address.startswith("\0"):
            Path(self.address).unlink(missing_ok=True)


def _stale(path: str) -> bool:
    """Whether the socket file at ``path`` was left by a watcher that is gone."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return False
