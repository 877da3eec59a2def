"""Writing files atomically, and only when their content changes."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: The temporary files :func:`write_if_changed` writes beside their target.
TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")


#: The files this process wrote that are not on the disk for sure yet (see :func:`flush`).
_pending: set[str] = set()
_pending_guard = threading.Lock()
#: Files synced at once by :func:`flush` (the file system commits them together).
FLUSH_THREADS = 16


def write_if_changed(path: Path, data: bytes | str, *, durable: bool = False) -> bool:
    """Replace ``path`` with ``data`` atomically unless it already holds exactly that.

    Readers see the old file or the new one, never a part. An unchanged file keeps
    its mtime, so tools that compare mtimes (doit, make, browsers) see no change.
    ``durable=True`` syncs the file to the disk before it replaces the old one (for
    build state whose order on disk matters); other files reach the disk by
    :func:`flush`, at the end of the build. Returns whether the file was written.
    """
    content = data.encode() if isinstance(data, str) else data
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    temporary = write_temporary(path, content, durable=durable)
    try:
        os.replace(temporary, path)
    except BaseException:
        discard(temporary)
        raise
    return True


def write_temporary(path: Path, content: bytes, *, durable: bool = False) -> str:
    """Write ``content`` to a new temporary file beside ``path``; return its name.

    An :class:`OSError` names ``path`` (a full disk says so at ``write()``, without a name).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
    except OSError as exc:
        discard(temporary)
        raise _naming(exc, path) from None
    except BaseException:
        discard(temporary)
        raise
    if not durable:
        with _pending_guard:
            _pending.add(str(path))  # its name: the temporary file is renamed to it
    return temporary


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc``, naming the file that was to be written (not its temporary file)."""
    if exc.filename is None or str(exc.filename).startswith(str(path.parent / f".{path.name}.")):
        exc.filename = str(path)
    return exc


def discard(temporary: str) -> None:
    Path(temporary).unlink(missing_ok=True)


def flush() -> None:
    """Make every file this process wrote since the last flush durable, and their folders
    (the renames): each is synced, not the whole machine's file systems.

    Called before doit saves its state: a task it records as done has its outputs on
    the disk, even if the machine loses power a moment later.
    """
    with _pending_guard:
        written = sorted(_pending)
        _pending.clear()
    if not written:
        return
    folders = sorted({os.path.dirname(name) for name in written})
    if len(written) < FLUSH_THREADS:
        for name in written:
            _sync(name)
    else:
        with ThreadPoolExecutor(FLUSH_THREADS) as pool:
            list(pool.map(_sync, written))
    for folder in folders:
        sync_folder(Path(folder))


def _sync(name: str | Path) -> None:
    """Sync one written file or folder (gone since: nothing to sync; where the platform
    cannot sync a folder, nothing is)."""
    try:
        fd = os.open(name, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sync_folder(path: Path) -> None:
    """Make the renames done in folder ``path`` durable (where the platform allows it)."""
    _sync(path)


def remove_temporary(folders: Iterable[Path], *, spare: Iterable[str] = ()) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folders`` (recursively).

    Only call this while no other process writes there (under the build lock). Files
    whose target name is in ``spare`` are kept: processes that do not take the build
    lock write those.
    """
    keep = set(spare)
    removed = []
    for folder in folders:
        for root, _, names in os.walk(folder):
            for name in names:
                match = TEMPORARY.match(name)
                if match and match["target"] not in keep:
                    path = Path(root) / name
                    path.unlink(missing_ok=True)
                    removed.append(path)
    return removed
