"""chartbuild's settings: one function per setting, read when used, with its default.

| setting | default | meaning |
| --- | --- | --- |
| ``CHARTBUILD_OUTPUT_DIR`` | ``"charts"`` | charts, numbers, dashboards and the manifest |
| ``CHARTBUILD_STATE_DIR`` | ``".chartbuild"`` | stamps, cursor, doit's database, lock |
| ``CHARTBUILD_GENERATORS`` | ``[]`` | dotted paths of extra generator modules |
| ``CHARTBUILD_AUTODISCOVER`` | ``True`` | use ``<app>/charts.py`` of installed apps as generators |
| ``CHARTBUILD_LOCK_TIMEOUT`` | ``600`` | seconds a build waits for another one to finish |
| ``CHARTBUILD_DATABASE`` | ``"default"`` | the database alias holding the events table |
| ``CHARTBUILD_HOOK`` | ``"signal"`` | after a commit the hook wakes ``doit auto``, or ``"build"`` |
| ``CHARTBUILD_POLL_INTERVAL`` | ``2`` | seconds between two looks at the change tables |
| ``CHARTBUILD_CAPTURE`` | ``"auto"`` | triggers where the database has them, or ``"orm"`` |
| ``CHARTBUILD_STRICT_READS`` | ``False`` | a chart reading an undeclared model fails its task |
| ``CHARTBUILD_KEEP_EVENTS`` | ``None`` | a ``timedelta``: delete exported mqueue events older |
| ``CHARTBUILD_NOTIFY`` | ``True`` | PostgreSQL's capture triggers send ``NOTIFY chartbuild`` |
| ``CHARTBUILD_PARALLEL`` | CPU count | threads of a build (doit's ``-n`` overrides it) |
| ``CHARTBUILD_CACHE_DIR`` | user cache | where ``vega.js`` is kept between output directories |
| ``CHARTBUILD_DEFAULT_PERMISSION`` | ``"staff"`` | who may see what declares no permission |
| ``CHARTBUILD_SENDFILE`` | ``""`` | the web server sends files (``"X-Sendfile"``, ...) |
| ``CHARTBUILD_SENDFILE_URL`` | ``"/chartbuild-outputs/"`` | nginx's internal location |
| ``CHARTBUILD_LIVE_INTERVAL`` | ``1`` | seconds between two looks of an open page |

Relative paths are taken from ``BASE_DIR`` when the settings define it (as those of
``startproject`` do), else from the working directory; so the web process, ``doit``
and the management commands agree on them wherever they are started.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings


def _path(value: str | Path) -> Path:
    path = Path(value)
    if path.is_absolute():
        return path
    base = getattr(settings, "BASE_DIR", None)
    return (Path(base) if base else Path.cwd()) / path


def output_dir() -> Path:
    """Where outputs are written: ``CHARTBUILD_OUTPUT_DIR``, default ``charts``."""
    return _path(getattr(settings, "CHARTBUILD_OUTPUT_DIR", "charts"))


def state_dir() -> Path:
    """Where build state lives: ``CHARTBUILD_STATE_DIR``, default ``.chartbuild``."""
    return _path(getattr(settings, "CHARTBUILD_STATE_DIR", ".chartbuild"))


def generators() -> list[str]:
    """Dotted paths of generator modules: ``CHARTBUILD_GENERATORS``, default ``[]``."""
    return list(getattr(settings, "CHARTBUILD_GENERATORS", []))


def autodiscover() -> bool:
    """Whether ``<app>/charts.py`` modules are generators: ``CHARTBUILD_AUTODISCOVER``."""
    return bool(getattr(settings, "CHARTBUILD_AUTODISCOVER", True))


def lock_timeout() -> float:
    """Seconds to wait for a running build: ``CHARTBUILD_LOCK_TIMEOUT``, default 600.

    ``0`` makes a second build stop at once instead of waiting.
    """
    return float(getattr(settings, "CHARTBUILD_LOCK_TIMEOUT", 600))


def database() -> str:
    """Alias of the database with mqueue's events: ``CHARTBUILD_DATABASE``."""
    return str(getattr(settings, "CHARTBUILD_DATABASE", "default"))


def hook_mode() -> str:
    """What the mqueue hook does after a commit: ``CHARTBUILD_HOOK``, default ``"signal"``.

    ``"signal"`` wakes a running ``doit auto``; ``"build"`` builds the affected
    generators in the committing process.
    """
    return str(getattr(settings, "CHARTBUILD_HOOK", "signal"))


def poll_interval() -> float:
    """Seconds between two looks at the events table in ``doit auto``, default 2."""
    return float(getattr(settings, "CHARTBUILD_POLL_INTERVAL", 2))


CAPTURE_MODES = ("auto", "orm")


def capture() -> str:
    """How writes are captured: ``CHARTBUILD_CAPTURE``, default ``"auto"``.

    ``"auto"``: database triggers on PostgreSQL and SQLite, Django's connection elsewhere;
    ``"orm"``: Django's connection only (no triggers; for a database role that may not
    create them).
    """
    return str(getattr(settings, "CHARTBUILD_CAPTURE", "auto"))


def strict_reads() -> bool:
    """Whether a chart that reads a model it does not declare fails: ``CHARTBUILD_STRICT_READS``.

    Default ``False``: such a read is a warning.
    """
    return bool(getattr(settings, "CHARTBUILD_STRICT_READS", False))


def keep_events() -> timedelta | None:
    """How long exported mqueue events are kept: ``CHARTBUILD_KEEP_EVENTS``, default forever.

    A ``timedelta``: the exporter deletes settled events older than that.
    """
    value = getattr(settings, "CHARTBUILD_KEEP_EVENTS", None)
    return value if isinstance(value, timedelta) else None


def notify() -> bool:
    """Whether PostgreSQL's capture triggers send ``NOTIFY``: ``CHARTBUILD_NOTIFY``, default True.

    ``NOTIFY`` wakes ``doit auto`` at commit. Turn it off for writers that use two-phase
    commit (``PREPARE TRANSACTION`` refuses a transaction that notified); ``doit auto``
    then finds their changes by polling. Changing it makes the triggers outdated: run
    ``migrate``.
    """
    return bool(getattr(settings, "CHARTBUILD_NOTIFY", True))


def parallel() -> int:
    """Threads a build runs its tasks in: ``CHARTBUILD_PARALLEL``, default the CPU count.

    ``1`` builds serially. doit's ``-n N`` overrides it for one run.
    """
    value = getattr(settings, "CHARTBUILD_PARALLEL", None)
    return max(1, int(value)) if value is not None else (os.cpu_count() or 1)


def cache_dir() -> Path:
    """Where ``vega.js`` is cached per vl-convert version: ``CHARTBUILD_CACHE_DIR``.

    Default: ``$XDG_CACHE_HOME/chartbuild``, or ``~/.cache/chartbuild``.
    """
    value = getattr(settings, "CHARTBUILD_CACHE_DIR", None)
    if value:
        return _path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chartbuild"


def default_permission() -> Any:
    """Who may see a chart or number that declares none: ``CHARTBUILD_DEFAULT_PERMISSION``.

    A permission string, ``"staff"``, ``"signed_in"``, ``"anyone"`` or a callable of the
    user (see :mod:`chartbuild.permissions`); default ``"staff"``.
    """
    return getattr(settings, "CHARTBUILD_DEFAULT_PERMISSION", "staff")


SENDFILE_MODES = ("", "X-Sendfile", "X-Accel-Redirect")


def sendfile() -> str:
    """How the views send a file: ``CHARTBUILD_SENDFILE``, default ``""`` (Django sends it).

    ``"X-Sendfile"`` (Apache's mod_xsendfile, lighttpd) or ``"X-Accel-Redirect"`` (nginx):
    after the permission check, the response names the file and the web server sends it.
    """
    return str(getattr(settings, "CHARTBUILD_SENDFILE", "") or "")


def sendfile_url() -> str:
    """The internal location nginx serves the output directory at: ``CHARTBUILD_SENDFILE_URL``.

    Default ``"/chartbuild-outputs/"``; only for ``X-Accel-Redirect``.
    """
    value = str(getattr(settings, "CHARTBUILD_SENDFILE_URL", "/chartbuild-outputs/"))
    return value if value.endswith("/") else value + "/"


def live_interval() -> float:
    """Seconds between two looks of an open page for a new build: ``CHARTBUILD_LIVE_INTERVAL``.

    Default 1: a page shows a rebuild within about a second of it.
    """
    return float(getattr(settings, "CHARTBUILD_LIVE_INTERVAL", 1))


LEADER_MODES = ("postgres", "file")


def leader(using: str | None = None) -> str:
    """How long-lived builders on several machines elect the one that builds:
    ``CHARTBUILD_LEADER``.

    ``"postgres"`` (the default when the database is PostgreSQL): a PostgreSQL advisory
    lock, held by one builder of all the machines (see :mod:`chartbuild.leader`);
    ``"file"`` (the default elsewhere): only the build lock of the state directory.
    """
    from django.db import connections

    value = getattr(settings, "CHARTBUILD_LEADER", None)
    if value is None:
        return "postgres" if connections[using or database()].vendor == "postgresql" else "file"
    return str(value)


def leader_retry() -> float:
    """Seconds between two tries of a standby builder to lead: ``CHARTBUILD_LEADER_RETRY``.

    Default 2: a lost leader is replaced within about that.
    """
    return float(getattr(settings, "CHARTBUILD_LEADER_RETRY", 2))


def leader_key() -> str:
    """What tells this project's builders from another's on the same database:
    ``CHARTBUILD_LEADER_KEY``, default ``""``.

    Builders elect one leader per database; two projects that share one database set
    different keys.
    """
    return str(getattr(settings, "CHARTBUILD_LEADER_KEY", ""))


def storage_grace() -> float:
    """Seconds a file of ``STORAGES["chartbuild"]`` that the manifest no longer names is
    kept, for the requests that read an earlier manifest: ``CHARTBUILD_STORAGE_GRACE``,
    default 60 (``0``: deleted by the next publication)."""
    return max(0.0, float(getattr(settings, "CHARTBUILD_STORAGE_GRACE", 60)))
