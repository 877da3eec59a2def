"""The build lock: one builder at a time per state directory.

The lock is an ``flock`` on ``<state>/build.lock``. The kernel releases it when
the holding process exits, however it exits, so a crashed build never leaves a
stale lock behind. A second build waits for the first to finish (up to
``CHARTBUILD_LOCK_TIMEOUT`` seconds) and then works on fresh state.

The holder writes its pid into the file (so a waiting build can name it) and empties it
when it lets go normally. A build that finds a pid there took over from one that was
killed: :func:`inherited_crash` tells it to clear what that one may have left.
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

#: Per lock file: a thread lock (flock does not exclude threads of one process),
#: the thread that holds both, and the open file that holds the flock.
_guard = threading.Lock()
_threads: dict[Path, threading.Lock] = {}
_owners: dict[Path, int] = {}
_files: dict[Path, IO[str]] = {}
#: Lock files whose previous holder was killed while holding them.
_crashed: set[Path] = set()


def _path(state_dir: Path) -> Path:
    return (state_dir / "build.lock").absolute()


def _take(path: Path, timeout: float) -> None:
    with _guard:
        thread_lock = _threads.setdefault(path, threading.Lock())
    started = time.monotonic()
    if not thread_lock.acquire(timeout=max(timeout, 0)):
        raise LockTimeout(
            f"another build in this process holds {path}; it has not finished within "
            f"{timeout:g} s (CHARTBUILD_LOCK_TIMEOUT)."
        )
    try:
        _files[path] = acquire(path, max(0.0, timeout - (time.monotonic() - started)))
    except BaseException:
        thread_lock.release()
        raise
    _owners[path] = threading.get_ident()


def _give(path: Path) -> None:
    del _owners[path]
    release(_files.pop(path))
    _threads[path].release()


def hold(state_dir: Path, timeout: float) -> None:
    """Take the build lock of ``state_dir`` for the rest of this process's life.

    Does nothing if this process holds it already: a build run by :func:`held` in one
    thread runs its tasks in others. Raises :class:`LockTimeout` if another build keeps
    it for more than ``timeout`` seconds.
    """
    path = _path(state_dir)
    with _guard:
        if path in _owners:
            return
    _take(path, timeout)
    atexit.register(_mark_released, _files[path])


def inherited_crash(state_dir: Path) -> bool:
    """Whether this process took the lock over from a build that was killed holding it."""
    return _path(state_dir) in _crashed


@contextmanager
def held(state_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the build lock of ``state_dir`` for the duration of a ``with`` block.

    Inside it, :func:`hold` (called by the export task) is a no-op; on leaving it
    the lock is released, so a long-lived process can build again later. Other
    threads of this process wait as other processes do.
    """
    path = _path(state_dir)
    if _owners.get(path) == threading.get_ident():
        yield
        return
    _take(path, timeout)
    try:
        yield
    finally:
        _give(path)


def acquire(path: Path, timeout: float) -> IO[str]:
    """Lock ``path`` and return the open file that holds the lock."""
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
    if handle.read().strip():
        _crashed.add(path.absolute())
    else:
        _crashed.discard(path.absolute())
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


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
