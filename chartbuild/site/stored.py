"""What the site reads of the outputs published to ``STORAGES["chartbuild"]``.

The views read the stored manifest and the files it names through the storage. With
builders elected by PostgreSQL, each publication saves a new serial in the database
(:mod:`chartbuild.build.handover`), after its manifest: a web process asks for it (one
indexed query) and reads the manifest again as soon as it changed, so a new chart is
served as soon as it is published (and at least every :data:`SERIAL_TTL` seconds).
Otherwise it reads the manifest at most every :data:`MANIFEST_TTL` seconds. Files are
read through the storage too, or the browser is sent to the storage's own URL when it
signs its URLs (django-storages' S3 with ``querystring_auth``, its default; see
:func:`chartbuild.publish.storage.signs_urls`). A stored file never changes (its name
carries a digest of its content), so files are cached, up to :data:`CACHE_BYTES` per
process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from chartbuild import conf
from chartbuild.publish.storage import get, read

#: Seconds a web process uses the stored manifest before it reads it again.
MANIFEST_TTL = 1.0
#: Seconds it keeps a manifest whose serial has not changed (a publication whose save of
#: its serial failed is read all the same).
SERIAL_TTL = 10.0
#: Bytes of stored files a web process keeps; a file larger than a quarter of it is never kept.
CACHE_BYTES = 32 * 1024 * 1024

_cache_lock = threading.Lock()
#: The storage read, when, the serial of the publication (or ""), the manifest.
_cache: tuple[int, float, str, dict[str, Any]] | None = None


def manifest() -> dict[str, Any]:
    """The stored manifest as the views see it: read again once a newer publication's
    serial is saved, or after :data:`MANIFEST_TTL` s when builders save none."""
    global _cache
    store = get()
    now = time.monotonic()
    serial = _published_serial()
    with _cache_lock:
        if _cache is not None and _cache[0] == id(store):
            if serial is not None and _cache[2] == serial and now - _cache[1] < SERIAL_TTL:
                return _cache[3]
            if serial is None and now - _cache[1] < MANIFEST_TTL:
                return _cache[3]
    data = read(store)
    with _cache_lock:
        _cache = (id(store), now, serial or "", data)
    return data


def _published_serial() -> str | None:
    """The serial the latest publication saved ("" before the first), or None when builders
    save none (or the database cannot say now: the manifest is then read by age)."""
    from django.db import DatabaseError

    from chartbuild.build import handover
    from chartbuild.models import BuildState

    try:
        if not handover.enabled():
            return None
        found = (
            BuildState.objects.using(conf.database())
            .filter(key=conf.leader_key())
            .values_list("serial", flat=True)
            .first()
        )
    except DatabaseError:
        return None
    return found or ""


def entries() -> dict[str, dict[str, Any]]:
    """The stored manifest's entries by task."""
    return {
        e["task"]: e
        for e in manifest().get("entries", [])
        if isinstance(e, dict) and isinstance(e.get("task"), str)
    }


class ByteCache:
    """The most recently read files, up to ``limit`` bytes in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._files: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, key: tuple[int, str]) -> bytes | None:
        with self._guard:
            found = self._files.get(key)
            if found is not None:
                self._files.move_to_end(key)
            return found

    def put(self, key: tuple[int, str], content: bytes) -> None:
        if len(content) > self.limit // 4:
            return  # one large file would push out many small ones
        with self._guard:
            if key in self._files:
                return
            self._files[key] = content
            self.size += len(content)
            while self.size > self.limit:
                _, dropped = self._files.popitem(last=False)
                self.size -= len(dropped)


_files = ByteCache(CACHE_BYTES)


def content(name: str) -> bytes:
    """File ``name`` of the storage (cached: a stored file never changes)."""
    store = get()
    key = (id(store), name)
    found = _files.get(key)
    if found is None:
        with store.open(name, "rb") as handle:
            found = bytes(handle.read())
        _files.put(key, found)
    return found


def asset(path: str) -> str | None:
    """The name in the storage of asset ``path`` (``static/vega.js``), if published."""
    found = manifest().get("assets")
    name = found.get(path) if isinstance(found, dict) else None
    return name if isinstance(name, str) else None
