"""Each file's md5, computed once per version of the file: doit's checks and the inputs
digest of every chart ask for the same few files (stamps, generators' sources) again and
again in one build."""

from __future__ import annotations

import os
import threading

from doit.dependency import get_file_md5


class FileHashes:
    """The md5 of each file a build asked about, by version (one per build: see
    :class:`chartbuild.build.session.Session`)."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, int, int, int, int], str] = {}
        self._guard = threading.Lock()

    def md5(self, path: str, stat: os.stat_result | None = None) -> str:
        """The md5 of ``path``, computed once per version of the file.

        A version is its inode, size, mtime and ctime: a file replaced (a new inode) or
        written again (a new ctime, even with its mtime set back) is hashed again.
        """
        stat = stat or os.stat(path)
        key = (path, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        with self._guard:
            found = self._found.get(key)
        if found is None:
            found = get_file_md5(path)
            with self._guard:
                self._found[key] = found
        return found
