"""Each file's md5, computed once per version of the file: doit's checks and the inputs
digest of every chart ask for the same few files (stamps, generators' sources) again and
again in one build. doit's checker of a build's ``file_dep`` uses them (:func:`checker`)."""

from __future__ import annotations

import os
import threading
from typing import Any

from doit.dependency import MD5Checker, get_file_md5


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


class ContentChecker(MD5Checker):  # type: ignore[misc]
    """Decides whether a ``file_dep`` changed by its content alone.

    doit's default checker trusts an unchanged mtime. A stamp can change twice within
    one mtime tick on a filesystem with coarse timestamps, keeping its size; so content
    decides. Each file is hashed once per build (:attr:`hashes`, the build's: see
    :func:`checker`): a generator's source is a dependency of each of its charts.
    """

    hashes: FileHashes = FileHashes()

    def check_modified(self, file_path: str, file_stat: Any, state: Any) -> bool:
        _, size, md5 = state
        return bool(file_stat.st_size != size or md5 != self.hashes.md5(file_path, file_stat))

    def get_state(self, dep: str, current_state: Any) -> Any:
        stat = os.stat(dep)
        state = (stat.st_mtime, stat.st_size, self.hashes.md5(dep, stat))
        return None if current_state and list(current_state) == list(state) else state


def checker(hashes: FileHashes) -> type[ContentChecker]:
    """doit's ``check_file_uptodate`` for a build: it hashes with the build's ``hashes``
    (doit makes the checker itself, before it loads the tasks)."""
    return type("ContentChecker", (ContentChecker,), {"hashes": hashes})
