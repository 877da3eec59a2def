"""chartbuild's settings: each defined once here, with its default and meaning; read when used.

:data:`SETTINGS` lists them in the order the documentation shows them (its table is made
from it). Each has a function below that reads it, so ``override_settings`` works in
tests and nothing is read at import time.

Relative paths are taken from ``BASE_DIR`` when the settings define it (as those of
``startproject`` do), else from the working directory; so the web process, ``doit``
and the management commands agree on them wherever they are started.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class Setting:
    """A setting of chartbuild: its name, default and meaning, as the documentation gives them."""

    name: str
    default: Any
    meaning: str
    #: The default as the documentation shows it, when it is computed (the CPU count...).
    shown: str = ""

    def value(self) -> Any:
        """The project's value, or the default."""
        return getattr(settings, self.name, self.default)

    @property
    def default_text(self) -> str:
        return self.shown or f"`{self.default!r}`".replace("'", '"')


OUTPUT_DIR = Setting("CHARTBUILD_OUTPUT_DIR", "charts", "where the outputs go")
STATE_DIR = Setting(
    "CHARTBUILD_STATE_DIR",
    ".chartbuild",
    "stamps, the export cursor, doit's sqlite3 database, the build lock, the generator cache",
)
GENERATORS = Setting(
    "CHARTBUILD_GENERATORS",
    [],
    "dotted paths of generator modules (each named after its last part)",
)
AUTODISCOVER = Setting(
    "CHARTBUILD_AUTODISCOVER", True, "use `<app>/charts.py` of installed apps as generators"
)
LOCK_TIMEOUT = Setting(
    "CHARTBUILD_LOCK_TIMEOUT",
    600,
    "seconds a build waits for a running one; `0`: it stops at once, naming that build",
)
DATABASE = Setting(
    "CHARTBUILD_DATABASE",
    "default",
    "the database alias holding mqueue's events, chartbuild's change log and the tables "
    "charts read",
)
HOOK = Setting(
    "CHARTBUILD_HOOK",
    "signal",
    'after a commit, mqueue\'s hook wakes `doit auto` (`"signal"`) or builds the affected '
    'generators in the saving process (`"build"`)',
)
POLL_INTERVAL = Setting(
    "CHARTBUILD_POLL_INTERVAL",
    2,
    "seconds between two looks at the change tables in `doit auto`",
)
CAPTURE = Setting(
    "CHARTBUILD_CAPTURE",
    "auto",
    '`"auto"`: triggers on PostgreSQL and SQLite, Django\'s connection elsewhere; `"orm"`: '
    "Django's connection only (for a database role that may not create triggers)",
)
NOTIFY = Setting(
    "CHARTBUILD_NOTIFY",
    True,
    "PostgreSQL's capture triggers send `NOTIFY chartbuild` at commit; turn it off for "
    "writers that use two-phase commit (`PREPARE TRANSACTION` refuses a transaction that "
    "notified), then run `migrate`",
)
STRICT_READS = Setting(
    "CHARTBUILD_STRICT_READS",
    False,
    "a chart whose queries read a model it does not declare fails, instead of a warning",
)
KEEP_EVENTS = Setting(
    "CHARTBUILD_KEEP_EVENTS",
    None,
    "a `timedelta`: exported mqueue events older than that are deleted; `None` keeps them all",
)
PARALLEL = Setting(
    "CHARTBUILD_PARALLEL",
    None,
    "threads a build runs its tasks in (doit's `-n` overrides it); `1` builds serially",
    shown="the CPU count",
)
CACHE_DIR = Setting(
    "CHARTBUILD_CACHE_DIR",
    None,
    "where `vega.js` is kept once per vl-convert version, so a new output directory does not "
    "make it again",
    shown="`$XDG_CACHE_HOME/chartbuild`",
)
DEFAULT_PERMISSION = Setting(
    "CHARTBUILD_DEFAULT_PERMISSION",
    "staff",
    "who may see a chart or number that declares no permission: a permission string "
    '(`"shop.view_order"`), `"staff"`, `"signed_in"`, `"anyone"`, or a callable of the user',
)
SENDFILE = Setting(
    "CHARTBUILD_SENDFILE",
    "",
    '`""`: Django sends the files; `"X-Accel-Redirect"` or `"X-Sendfile"`: the web server '
    "does, after Django's permission check",
)
SENDFILE_URL = Setting(
    "CHARTBUILD_SENDFILE_URL",
    "/chartbuild-outputs/",
    "nginx's internal location of the output directory, for `X-Accel-Redirect`",
)
LIVE_INTERVAL = Setting(
    "CHARTBUILD_LIVE_INTERVAL",
    1,
    "seconds between two looks of an open page at its generator's state",
)
LEADER = Setting(
    "CHARTBUILD_LEADER",
    None,
    '`"postgres"`: of the long-lived builders (`doit auto`, `gencharts -s`) of all machines, '
    "the one holding a PostgreSQL advisory lock builds, the others wait as standbys, and "
    "every build holds the database's build lock; `\"file\"`: each state directory's build "
    "lock only",
    shown='`"postgres"` on PostgreSQL, else `"file"`',
)
LEADER_RETRY = Setting(
    "CHARTBUILD_LEADER_RETRY",
    2,
    "seconds between two tries of a standby builder to lead",
)
LEADER_LEASE = Setting(
    "CHARTBUILD_LEADER_LEASE",
    10,
    "seconds a leading builder may go without renewing its lease (a query on its leader "
    "session, every third of this) before a standby ends that session and leads: a leader "
    "frozen while still connected (a paused VM) holds up nobody longer",
)
LEADER_KEY = Setting(
    "CHARTBUILD_LEADER_KEY",
    "",
    "tells this project's builders from another's that share its database (each project "
    "elects its own leader)",
)


class _Storage(Setting):
    """``STORAGES["chartbuild"]``: an entry of Django's ``STORAGES``, not a setting of its own."""

    def value(self) -> Any:
        return settings.STORAGES.get("chartbuild")


STORAGE = _Storage(
    'STORAGES["chartbuild"]',
    None,
    "the Django storage the outputs are published to and the views read from",
    shown="not set: the output directory",
)
STORAGE_GRACE = Setting(
    "CHARTBUILD_STORAGE_GRACE",
    60,
    "seconds a file of the storage that the manifest no longer names is kept for the "
    "requests that read an earlier manifest; `0`: deleted by the next publication",
)

MAX_LAG = Setting(
    "CHARTBUILD_MAX_LAG",
    600,
    "how far behind its committed changes a chart or number may be, unless it or its "
    "generator (`MAX_LAG`) says otherwise: seconds or a `timedelta` (over it: error; over "
    "half of it: warn), a `(warn, error)` pair, or `None` for no limit",
)
METRICS_PERMISSION = Setting(
    "CHARTBUILD_METRICS_PERMISSION",
    "staff",
    'who may read the Prometheus metrics (`metrics/`): a permission string, `"staff"`, '
    '`"signed_in"`, `"anyone"` or a callable of the user',
)

#: Every setting, in the order the documentation lists them.
SETTINGS: tuple[Setting, ...] = (
    OUTPUT_DIR,
    STATE_DIR,
    GENERATORS,
    AUTODISCOVER,
    DATABASE,
    LOCK_TIMEOUT,
    PARALLEL,
    HOOK,
    POLL_INTERVAL,
    CAPTURE,
    NOTIFY,
    STRICT_READS,
    KEEP_EVENTS,
    CACHE_DIR,
    DEFAULT_PERMISSION,
    SENDFILE,
    SENDFILE_URL,
    LIVE_INTERVAL,
    LEADER,
    LEADER_RETRY,
    LEADER_LEASE,
    LEADER_KEY,
    STORAGE,
    STORAGE_GRACE,
    MAX_LAG,
    METRICS_PERMISSION,
)

HOOK_MODES = ("signal", "build")
CAPTURE_MODES = ("auto", "orm")
SENDFILE_MODES = ("", "X-Sendfile", "X-Accel-Redirect")
LEADER_MODES = ("postgres", "file")


def _path(value: str | Path) -> Path:
    path = Path(value)
    if path.is_absolute():
        return path
    base = getattr(settings, "BASE_DIR", None)
    return (Path(base) if base else Path.cwd()) / path


def output_dir() -> Path:
    """Where outputs are written: ``CHARTBUILD_OUTPUT_DIR``."""
    return _path(OUTPUT_DIR.value())


def state_dir() -> Path:
    """Where build state lives: ``CHARTBUILD_STATE_DIR``."""
    return _path(STATE_DIR.value())


def generators() -> list[str]:
    """Dotted paths of generator modules: ``CHARTBUILD_GENERATORS``."""
    return list(GENERATORS.value())


def autodiscover() -> bool:
    """Whether ``<app>/charts.py`` modules are generators: ``CHARTBUILD_AUTODISCOVER``."""
    return bool(AUTODISCOVER.value())


def lock_timeout() -> float:
    """Seconds to wait for a running build: ``CHARTBUILD_LOCK_TIMEOUT``.

    ``0`` makes a second build stop at once instead of waiting.
    """
    return float(LOCK_TIMEOUT.value())


def database() -> str:
    """Alias of the database with mqueue's events: ``CHARTBUILD_DATABASE``."""
    return str(DATABASE.value())


def hook_mode() -> str:
    """What the mqueue hook does after a commit: ``CHARTBUILD_HOOK``.

    ``"signal"`` wakes a running ``doit auto``; ``"build"`` builds the affected
    generators in the committing process.
    """
    return str(HOOK.value())


def poll_interval() -> float:
    """Seconds between two looks at the change tables in ``doit auto``:
    ``CHARTBUILD_POLL_INTERVAL``."""
    return float(POLL_INTERVAL.value())


def capture() -> str:
    """How writes are captured: ``CHARTBUILD_CAPTURE``.

    ``"auto"``: database triggers on PostgreSQL and SQLite, Django's connection elsewhere;
    ``"orm"``: Django's connection only (no triggers; for a database role that may not
    create them).
    """
    return str(CAPTURE.value())


def strict_reads() -> bool:
    """Whether a chart that reads a model it does not declare fails: ``CHARTBUILD_STRICT_READS``.

    Default ``False``: such a read is a warning.
    """
    return bool(STRICT_READS.value())


def keep_events() -> timedelta | None:
    """How long exported mqueue events are kept: ``CHARTBUILD_KEEP_EVENTS``.

    A ``timedelta``: the exporter deletes settled events older than that.
    """
    value = KEEP_EVENTS.value()
    return value if isinstance(value, timedelta) else None


def notify() -> bool:
    """Whether PostgreSQL's capture triggers send ``NOTIFY``: ``CHARTBUILD_NOTIFY``.

    ``NOTIFY`` wakes ``doit auto`` at commit. Turn it off for writers that use two-phase
    commit (``PREPARE TRANSACTION`` refuses a transaction that notified); ``doit auto``
    then finds their changes by polling. Changing it makes the triggers outdated: run
    ``migrate``.
    """
    return bool(NOTIFY.value())


def parallel() -> int:
    """Threads a build runs its tasks in: ``CHARTBUILD_PARALLEL``.

    ``1`` builds serially. doit's ``-n N`` overrides it for one run.
    """
    value = PARALLEL.value()
    return max(1, int(value)) if value is not None else (os.cpu_count() or 1)


def cache_dir() -> Path:
    """Where ``vega.js`` is cached per vl-convert version: ``CHARTBUILD_CACHE_DIR``.

    Default: ``$XDG_CACHE_HOME/chartbuild``, or ``~/.cache/chartbuild``.
    """
    value = CACHE_DIR.value()
    if value:
        return _path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chartbuild"


def default_permission() -> Any:
    """Who may see a chart or number that declares none: ``CHARTBUILD_DEFAULT_PERMISSION``.

    A permission string, ``"staff"``, ``"signed_in"``, ``"anyone"`` or a callable of the
    user (see :mod:`chartbuild.site.permissions`); default ``"staff"``.
    """
    return DEFAULT_PERMISSION.value()


def sendfile() -> str:
    """How the views send a file: ``CHARTBUILD_SENDFILE``.

    ``"X-Sendfile"`` (Apache's mod_xsendfile, lighttpd) or ``"X-Accel-Redirect"`` (nginx):
    after the permission check, the response names the file and the web server sends it.
    """
    return str(SENDFILE.value() or "")


def sendfile_url() -> str:
    """The internal location nginx serves the output directory at: ``CHARTBUILD_SENDFILE_URL``.

    Default ``"/chartbuild-outputs/"``; only for ``X-Accel-Redirect``.
    """
    value = str(SENDFILE_URL.value())
    return value if value.endswith("/") else value + "/"


def live_interval() -> float:
    """Seconds between two looks of an open page for a new build: ``CHARTBUILD_LIVE_INTERVAL``.

    Default 1: a page shows a rebuild within about a second of it.
    """
    return float(LIVE_INTERVAL.value())


def leader(using: str | None = None) -> str:
    """How long-lived builders on several machines elect the one that builds:
    ``CHARTBUILD_LEADER``.

    ``"postgres"`` (the default when the database is PostgreSQL): a PostgreSQL advisory
    lock, held by one builder of all the machines (see :mod:`chartbuild.live.leader`);
    ``"file"`` (the default elsewhere): only the build lock of the state directory.
    """
    from django.db import connections

    value = LEADER.value()
    if value is None:
        return "postgres" if connections[using or database()].vendor == "postgresql" else "file"
    return str(value)


def leader_retry() -> float:
    """Seconds between two tries of a standby builder to lead: ``CHARTBUILD_LEADER_RETRY``.

    Default 2: a lost leader is replaced within about that.
    """
    return float(LEADER_RETRY.value())


def leader_lease() -> float:
    """Seconds a leader may go without renewing its lease: ``CHARTBUILD_LEADER_LEASE``."""
    return float(LEADER_LEASE.value())


def leader_key() -> str:
    """What tells this project's builders from another's on the same database:
    ``CHARTBUILD_LEADER_KEY``, default ``""``.

    Builders elect one leader per database; two projects that share one database set
    different keys.
    """
    return str(LEADER_KEY.value())


def storage_grace() -> float:
    """Seconds a file of ``STORAGES["chartbuild"]`` that the manifest no longer names is
    kept, for the requests that read an earlier manifest: ``CHARTBUILD_STORAGE_GRACE``."""
    return max(0.0, float(STORAGE_GRACE.value()))


#: A freshness limit in seconds: over ``warn`` a chart is late, over ``error`` stale.
LagLimit = tuple[float, float]


def lag_limit(value: Any, where: str) -> LagLimit | None:
    """``value`` (seconds, a ``timedelta``, a ``(warn, error)`` pair or ``None``) as a
    ``(warn, error)`` pair in seconds; a single value warns at half of it.

    Raises ``ValueError`` naming ``where`` for anything else.
    """

    def seconds(part: Any) -> float:
        if isinstance(part, timedelta):
            part = part.total_seconds()
        if isinstance(part, bool) or not isinstance(part, int | float) or not part > 0:
            raise ValueError(
                f"{where} must be a number of seconds above 0, a timedelta, a (warn, error) "
                f"pair or None, not {value!r}"
            )
        return float(part)

    if value is None:
        return None
    if isinstance(value, tuple | list):
        if len(value) != 2:
            seconds(None)  # raises: a pair is two limits
        warn, error = seconds(value[0]), seconds(value[1])
        if warn > error:
            raise ValueError(f"{where}: its warn limit {warn:g} s is above its error limit")
        return (warn, error)
    error = seconds(value)
    return (error / 2, error)


def max_lag() -> LagLimit | None:
    """The default freshness limit: ``CHARTBUILD_MAX_LAG`` (see :func:`lag_limit`)."""
    return lag_limit(MAX_LAG.value(), "CHARTBUILD_MAX_LAG")


def metrics_permission() -> Any:
    """Who may read the metrics endpoint: ``CHARTBUILD_METRICS_PERMISSION``."""
    return METRICS_PERMISSION.value()
