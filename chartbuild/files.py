"""Writing files atomically, and only when their content changes."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

#: The temporary files :func:`write_if_changed` writes beside their target.
TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")


#: Whether this process wrote a file that is not on the disk for sure yet.
_unflushed = False


def write_if_changed(path: Path, data: bytes | str, *, durable: bool = False) -> bool:
    """Replace ``path`` with ``data`` atomically unless it already holds exactly that.

    Readers see the old file or the new one, never a part. An unchanged file keeps
    its mtime, so tools that compare mtimes (doit, make, browsers) see no change.
    ``durable=True`` syncs the file to the disk before it replaces the old one (for
    build state whose order on disk matters); other files reach the disk by
    :func:`flush`, once per build. Returns whether the file was written.
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
    """Write ``content`` to a new temporary file beside ``path``; return its name."""
    global _unflushed
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
    except BaseException:
        discard(temporary)
        raise
    _unflushed = _unflushed or not durable
    return temporary


def discard(temporary: str) -> None:
    Path(temporary).unlink(missing_ok=True)


def flush() -> None:
    """Make every file this process wrote durable (one ``sync`` for a whole build).

    Called before doit saves its state: a task it records as done has its outputs on
    the disk, even if the machine loses power a moment later.
    """
    global _unflushed
    if _unflushed:
        os.sync()
        _unflushed = False


def sync_folder(path: Path) -> None:
    """Make the renames done in folder ``path`` durable (where the platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
