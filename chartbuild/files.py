"""Writing files atomically, and only when their content changes."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

#: The temporary files :func:`write_if_changed` writes beside their target.
TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")


def write_if_changed(path: Path, data: bytes | str) -> bool:
    """Replace ``path`` with ``data`` atomically unless it already holds exactly that.

    Readers see the old file or the new one, never a part. An unchanged file keeps
    its mtime, so tools that compare mtimes (doit, make, browsers) see no change.
    Returns whether the file was written.
    """
    content = data.encode() if isinstance(data, str) else data
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


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
