"""The build lock: one builder at a time per state directory.

The lock is an ``flock`` on ``<state>/build.lock``. The kernel releases it when
the holding process exits, however it exits, so a crashed build never leaves a
stale lock behind. A second build waits for the first to finish (up to
``CHARTBUILD_LOCK_TIMEOUT`` seconds) and then works on fresh state.

The holder writes its pid into the file (so a waiting build can name it) and empties it
when it lets go normally. A build that finds a pid there took over from one that was
killed: :attr:`FileLock.inherited_crash` tells it to clear what that one may have left.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from chartbuild.exceptions import LockTimeout

logger = logging.getLogger(__name__)

#: Per lock file, a thread lock: the threads of one process take turns as processes do.
_threads_guard = threading.Lock()
_threads: dict[Path, threading.Lock] = {}


def _path(state_dir: Path) -> Path:
    return (state_dir / "build.lock").absolute()


class FileLock:
    """The build lock of one state directory, held by one build (see :meth:`take`)."""

    def __init__(
        self, path: Path, handle: IO[str], thread_lock: threading.Lock, *, crashed: bool
    ) -> None:
        self.path = path
        self._handle: IO[str] | None = handle
        self._thread_lock = thread_lock
        #: Whether its previous holder was killed while holding it: what that build may
        #: have left half written is this one's to clear.
        self.inherited_crash = crashed
        # a process that ends without releasing it still says it let go normally
        atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        if self._handle is not None:
            _mark_released(self._handle)

    @classmethod
    def take(cls, state_dir: Path, timeout: float) -> FileLock:
        """Wait up to ``timeout`` seconds for the build lock of ``state_dir``.

        Raises :class:`LockTimeout` naming its holder if another build keeps it longer.
        """
        path = _path(state_dir)
        with _threads_guard:
            thread_lock = _threads.setdefault(path, threading.Lock())
        started = time.monotonic()
        if not thread_lock.acquire(timeout=max(timeout, 0)):
            raise LockTimeout(
                f"another build in this process holds {path}; it has not finished within "
                f"{timeout:g} s (CHARTBUILD_LOCK_TIMEOUT)."
            )
        try:
            handle, crashed = _acquire(path, max(0.0, timeout - (time.monotonic() - started)))
        except BaseException:
            thread_lock.release()
            raise
        return cls(path, handle, thread_lock, crashed=crashed)

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        """Let go (once): the next build may start."""
        handle, self._handle = self._handle, None
        if handle is not None:
            atexit.unregister(self._at_exit)
            release(handle)
            self._thread_lock.release()


@contextmanager
def held(state_dir: Path, timeout: float) -> Iterator[FileLock]:
    """Hold the build lock of ``state_dir`` for a ``with`` block."""
    found = FileLock.take(state_dir, timeout)
    try:
        yield found
    finally:
        found.release()


def acquire(path: Path, timeout: float) -> IO[str]:
    """Lock ``path`` and return the open file that holds the lock."""
    return _acquire(path, timeout)[0]


def _acquire(path: Path, timeout: float) -> tuple[IO[str], bool]:
    """Lock ``path``: the open file that holds the lock, and whether its previous holder
    was killed holding it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - kept open: the lock lives with it
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(handle)
                handle.close()
                raise LockTimeout(
                    f"another build ({holder}) holds {path}; it has not finished within "
                    f"{timeout:g} s (CHARTBUILD_LOCK_TIMEOUT). Wait for it or stop it, "
                    "then build again."
                ) from None
            if not waited:
                logger.warning("waiting for the build lock held by %s", _holder(handle))
                waited = True
            time.sleep(0.05)
    handle.seek(0)
    crashed = bool(handle.read().strip())  # its holder did not empty it: it was killed
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle, crashed


def release(handle: IO[str]) -> None:
    """Give a lock taken with :func:`acquire` back."""
    _mark_released(handle)
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


def _mark_released(handle: IO[str]) -> None:
    """Empty the lock file: its holder let go normally."""
    if not handle.closed:
        handle.seek(0)
        handle.truncate()
        handle.flush()


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "unknown process"


def holder(state_dir: Path) -> str:
    """Who holds the build lock of ``state_dir`` now (``pid N``), or "" if nobody does."""
    path = _path(state_dir)
    try:
        handle = open(path)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return ""
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        found = _holder(handle)
        handle.close()
        return found
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
    return ""
