"""How fresh each published chart and number is, against its freshness limit.

A chart's *lag* is the age of the oldest committed change that its published output does
not contain: the oldest change record (capture log or mqueue event) that no publication
contains yet, among the tables the chart's models read (``Consumer.*_published`` say how
far the publications reach, as for ``manage.py chartbuild status``). A chart whose last
builds failed keeps its last good output: it is behind at least since its first failed
build. A chart that was never built has no lag to tell: it is an error.

Each chart has a limit ``(warn, error)`` in seconds: its own ``max_lag``, else its
generator's ``MAX_LAG``, else ``CHARTBUILD_MAX_LAG``. Its status is ``pass``, ``warn``
(over the first) or ``error`` (over the second). ``manage.py chartbuild freshness``
reports them (exit 1 on an error), the site marks the charts in error as stale, and the
metrics endpoint exports the lags.

What the database says is read once per :func:`pending` call: two grouped queries over
the records no publication contains yet (the ids above the published marks, indexed).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, Min
from django.utils import timezone

from chartbuild import conf, names
from chartbuild.declare import catalog, tables
from chartbuild.declare.registry import Declaration
from chartbuild.publish import outputs

PASS, WARN, ERROR = "pass", "warn", "error"
STATUSES = (PASS, WARN, ERROR)


@dataclass(frozen=True)
class Pending:
    """The oldest change no publication contains, per table it wrote."""

    tables: dict[str, dt.datetime]
    #: When it was read (the database's records at that moment).
    at: dt.datetime
    #: How many change records no publication contains (the builders' queue).
    count: int = 0

    def oldest(self, among: Iterable[str]) -> tuple[str, dt.datetime] | None:
        found = [(moment, table) for table in among if (moment := self.tables.get(table))]
        if not found:
            return None
        moment, table = min(found)
        return table, moment


@dataclass(frozen=True)
class Freshness:
    """One chart or number: its lag against its limit."""

    task: str
    kind: str
    status: str
    #: Seconds behind its committed changes; None when it was never built.
    lag: float | None
    limit: tuple[float, float] | None
    #: The oldest change its output lacks: ``(table, commit time)``.
    oldest_pending: tuple[str, dt.datetime] | None
    built_at: str
    failed_at: str
    #: Since when it has been behind (its oldest pending change, or its first failed build).
    behind_since: dt.datetime | None

    @property
    def stale(self) -> bool:
        return self.status == ERROR

    def as_dict(self) -> dict[str, Any]:
        warn, error = self.limit or (None, None)
        return {
            "task": self.task,
            "kind": self.kind,
            "status": self.status,
            "lag": None if self.lag is None else round(self.lag, 3),
            "limit": None if self.limit is None else {"warn": warn, "error": error},
            "oldest_pending": None
            if self.oldest_pending is None
            else {"table": self.oldest_pending[0], "at": _iso(self.oldest_pending[1])},
            "behind_since": _iso(self.behind_since) if self.behind_since else None,
            "last_build": {"built_at": self.built_at or None, "failed_at": self.failed_at or None},
        }


_cache: dict[str, tuple[float, Pending]] = {}


def pending(using: str | None = None, *, max_age: float = 0.0) -> Pending:
    """The oldest unpublished change of each table; a copy at most ``max_age`` seconds old
    (the site's polls share one)."""
    using = using or conf.database()
    kept = _cache.get(using)
    if max_age and kept and time.monotonic() - kept[0] < max_age:
        return kept[1]
    found = _read(using)
    _cache[using] = (time.monotonic(), found)
    return found


def _read(using: str) -> Pending:
    from django.contrib.contenttypes.models import ContentType
    from mqueue.models import MEvent

    from chartbuild.models import Change, Consumer

    now = timezone.now()
    marks = Consumer.objects.using(using).aggregate(
        events=Max("events_published"), capture=Max("capture_published")
    )
    oldest: dict[str, dt.datetime] = {}

    def note(table: str, moment: dt.datetime | None) -> None:
        if moment is not None and (table not in oldest or moment < oldest[table]):
            oldest[table] = moment

    changes = (
        Change.objects.using(using)
        .filter(id__gt=marks["capture"] or 0)
        .exclude(table_name="")  # SQLite's export markers
        .values_list("table_name")
        .annotate(oldest=Min("at"), n=Count("id"))
    )
    count = 0
    for table, moment, n in changes:
        note(table, moment)
        count += n
    events = (
        MEvent.objects.using(using)
        .filter(id__gt=marks["events"] or 0, content_type__isnull=False)
        .values_list("content_type")
        .annotate(oldest=Min("date_posted"), n=Count("id"))
    )
    for content_type, moment, n in events:
        count += n
        model = ContentType.objects.db_manager(using).get_for_id(content_type).model_class()
        for table in tables.written_by(model) if model is not None else ():
            note(table, moment)
    return Pending(oldest, now, count)


def limit_of(generator: catalog.Generator, declaration: Declaration) -> tuple[float, float] | None:
    """The chart's own limit, else its generator's, else ``CHARTBUILD_MAX_LAG``."""
    return declaration.max_lag or generator.max_lag or conf.max_lag()


def of(
    generator: catalog.Generator,
    declaration: Declaration,
    record: outputs.Record,
    found: Pending,
) -> Freshness:
    """How fresh one chart or number is, given its last build's record."""
    limit = limit_of(generator, declaration)
    read = set().union(*tables.of_models(declaration.models).values())
    oldest = found.oldest(read)
    since = [oldest[1]] if oldest else []
    if record.error:
        failing = _moment(record.failing_since or record.failed_at)
        since += [failing] if failing else []
    behind = min(since, default=None)
    lag = max(0.0, (found.at - behind).total_seconds()) if behind else 0.0
    if not record.built_at:
        status, lag_or_none = ERROR, None
    else:
        lag_or_none = lag
        status = PASS
        if limit is not None and lag > limit[1]:
            status = ERROR
        elif limit is not None and lag > limit[0]:
            status = WARN
    return Freshness(
        task=names.task_name(generator.name, declaration.name),
        kind=declaration.kind,
        status=status,
        lag=lag_or_none,
        limit=limit,
        oldest_pending=oldest,
        built_at=record.built_at,
        failed_at=record.failed_at if record.error else "",
        behind_since=behind,
    )


def check(
    cat: catalog.Catalog,
    *,
    using: str | None = None,
    select: Callable[[str], bool] = lambda task: True,
    record: Callable[[str, str], outputs.Record] = outputs.read_record,
) -> list[Freshness]:
    """The freshness of every chart and number of ``cat`` that ``select`` keeps."""
    found = pending(using)
    return [
        of(generator, declaration, record(generator.name, declaration.name), found)
        for generator in cat.generators
        for declaration in generator.declarations
        if select(names.task_name(generator.name, declaration.name))
    ]


def _moment(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")
