"""The build lock: one builder at a time per state directory.

The lock is an ``flock`` on ``<state>/build.lock``. The kernel releases it when
the holding process exits, however it exits, so a crashed build never leaves a
stale lock behind. A second build waits for the first to finish (up to
``CHARTBUILD_LOCK_TIMEOUT`` seconds) and then works on fresh state.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from chartbuild.exceptions import LockTimeout

logger = logging.getLogger(__name__)

#: Locks this process holds until it exits, by path.
_held: dict[Path, IO[str]] = {}


def hold(state_dir: Path, timeout: float) -> None:
    """Take the build lock of ``state_dir`` for the rest of this process's life.

    Does nothing if this process already holds it. Raises :class:`LockTimeout`
    if another process keeps it for more than ``timeout`` seconds.
    """
    path = (state_dir / "build.lock").absolute()
    if path in _held:
        return
    handle = acquire(path, timeout)
    _held[path] = handle


@contextmanager
def held(state_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the build lock of ``state_dir`` for the duration of a ``with`` block.

    Inside it, :func:`hold` (called by the export task) is a no-op; on leaving it
    the lock is released, so a long-lived process can build again later.
    """
    path = (state_dir / "build.lock").absolute()
    if path in _held:
        yield
        return
    handle = acquire(path, timeout)
    _held[path] = handle
    try:
        yield
    finally:
        del _held[path]
        release(handle)


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
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def release(handle: IO[str]) -> None:
    """Give a lock taken with :func:`acquire` back."""
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "unknown process"
