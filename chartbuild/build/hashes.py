"""Each file's md5, computed once per version of the file (doit's checks and the inputs
digest of every chart ask for the same few files again and again)."""

from __future__ import annotations

import os
import threading

from doit.dependency import get_file_md5

_hashes: dict[tuple[str, int, int, int, int], str] = {}
_hashes_guard = threading.Lock()


def file_md5(path: str, stat: os.stat_result | None = None) -> str:
    """The md5 of ``path``, computed once per version of the file.

    A version is its inode, size, mtime and ctime: a file replaced (a new inode) or
    written again (a new ctime, even with its mtime set back) is hashed again.
    """
    stat = stat or os.stat(path)
    key = (path, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    with _hashes_guard:
        found = _hashes.get(key)
    if found is None:
        found = get_file_md5(path)
        with _hashes_guard:
            _hashes[key] = found
    return found


def forget() -> None:
    """Forget every hash (a long-lived process builds again)."""
    with _hashes_guard:
        _hashes.clear()
