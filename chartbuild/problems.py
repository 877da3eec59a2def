"""The problems chartbuild's system checks report: each check's id and what it means.

:data:`CHECKS` is the one list of them: the documentation's table is made from it, and a
:class:`Problem` (or a check message made by :mod:`chartbuild.checks`) with an id that is
not in it cannot be made, so no check goes undocumented.
"""

from __future__ import annotations

from dataclasses import dataclass

from chartbuild.names import RESERVED_GENERATORS, RESERVED_NAMES


def _listed(names: object) -> str:
    quoted = [f"`{name}`" for name in names]  # type: ignore[attr-defined]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


#: Every system check id, with the problem it reports (as the documentation lists it).
CHECKS: dict[str, str] = {
    "chartbuild.E001": "a generator module cannot be imported",
    "chartbuild.E002": "a generator, chart or number name is not a safe file name",
    "chartbuild.E003": "two charts or numbers of one generator share a name",
    "chartbuild.E004": "a chart or number reads a model that does not exist",
    "chartbuild.E005": "two generators share a name",
    "chartbuild.E006": "a chart or number declares no models",
    "chartbuild.E007": "`CHARTBUILD_GENERATORS` is not a list of dotted module paths",
    "chartbuild.E008": "`mqueue` is not in `INSTALLED_APPS`",
    "chartbuild.E009": '`CHARTBUILD_HOOK` is neither `"signal"` nor `"build"`',
    "chartbuild.E010": "a table a chart reads has no change-capture trigger, or an outdated "
    "one: run `migrate`",
    "chartbuild.E011": '`CHARTBUILD_CAPTURE` is neither `"auto"` nor `"orm"`',
    "chartbuild.E012": "`chartbuild` comes before `mqueue` in `INSTALLED_APPS`",
    "chartbuild.E013": "`CHARTBUILD_KEEP_EVENTS` is neither `None` nor a positive `timedelta`",
    "chartbuild.E014": "a name collides with another output: a chart or number named "
    f"{_listed(RESERVED_NAMES)}, two names that differ only by case, a generator named "
    f"{_listed(RESERVED_GENERATORS)}",
    "chartbuild.E015": "a permission (`permission=`, a generator's `PERMISSION`, "
    "`CHARTBUILD_DEFAULT_PERMISSION`, `CHARTBUILD_METRICS_PERMISSION`) is neither a "
    'permission of an installed model, nor `"staff"`, `"signed_in"`, `"anyone"`, nor a callable',
    "chartbuild.E016": '`CHARTBUILD_SENDFILE` is not `""`, `"X-Sendfile"` or `"X-Accel-Redirect"`',
    "chartbuild.E017": "`CHARTBUILD_LIVE_INTERVAL` is not a positive number of seconds",
    "chartbuild.E018": '`CHARTBUILD_LEADER` is neither `"postgres"` nor `"file"`, or '
    '`"postgres"` on another database',
    "chartbuild.E019": "`CHARTBUILD_LEADER_RETRY` or `CHARTBUILD_LEADER_LEASE` is not a "
    "positive number of seconds",
    "chartbuild.E020": '`STORAGES["chartbuild"]` cannot be loaded, or does not overwrite '
    "files (django-storages' `file_overwrite=False`)",
    "chartbuild.E021": "`CHARTBUILD_STORAGE_GRACE` is not a number of seconds, 0 or more",
    "chartbuild.E022": "`CHARTBUILD_MAX_LAG` is not a number of seconds above 0, a "
    "`timedelta`, a `(warn, error)` pair or `None`",
    "chartbuild.E023": "`columns=` names a model the chart does not list in `models=`, or a "
    "field its model does not have",
    "chartbuild.W001": 'with `CHARTBUILD_HOOK = "build"`, a model a chart reads is not '
    "tracked (create, update and delete) by `MQUEUE_AUTOREGISTER`",
    "chartbuild.W002": "the database gets no capture triggers: only writes made through "
    "Django are seen",
    "chartbuild.W003": "a model mqueue tracks has no admin change page: mqueue records no "
    "event for it",
    "chartbuild.W004": "the last build saw a chart read a model it does not declare",
    "chartbuild.W005": "a model mqueue tracks has a primary key mqueue cannot store",
    "chartbuild.W006": "a model a chart reads is stored in a view: writes to the tables "
    "behind it are not seen",
    "chartbuild.W007": "the database does not keep rollups: each read runs the full query",
    "chartbuild.W008": "a rollup the generators declare is not made in the database, or was "
    "made for an older declaration: its charts read the full query until `migrate`",
}


def known(check_id: str) -> str:
    """``check_id``, once it is known to be one of :data:`CHECKS`."""
    if check_id not in CHECKS:
        raise ValueError(f"{check_id!r} is not a check of chartbuild.problems.CHECKS")
    return check_id


@dataclass(frozen=True)
class Problem:
    """A configuration mistake, reported as a system check and by the failing task."""

    id: str
    msg: str
    hint: str
    generator: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        known(self.id)
