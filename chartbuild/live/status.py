"""Who builds, when changes were last exported, and how far behind the charts are.

Read from the database alone, so any machine of a site can tell (``manage.py chartbuild
status``):

- the leader: the builder holding the advisory lock (:mod:`chartbuild.live.leader`), and the
  build under way on any machine; or the build lock of this machine's state directory
  when builders do not elect one;
- the last export that read new changes: the newest ``seen`` of the exporters of this
  database (:class:`~chartbuild.models.Consumer`);
- the lag: how long the oldest committed change that no publication contains yet has
  been waiting (zero when nothing waits): a change counts until the build that exported
  it has published (its charts, dashboards and manifest written, and copied to the
  storage). It grows while no builder runs, and while a build is under way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connections
from django.db.models import Max

from chartbuild import conf
from chartbuild.build import dblock


@dataclass(frozen=True)
class Status:
    """What :func:`current` found."""

    mode: str
    leader: str
    now: dt.datetime
    exporter: str = ""
    last_export: dt.datetime | None = None
    oldest_waiting: dt.datetime | None = None
    #: The build under way on any machine (``"postgres"`` mode), or "".
    building: str = ""

    @property
    def lag(self) -> dt.timedelta:
        """How long the oldest change that no publication contains has waited."""
        if self.oldest_waiting is None:
            return dt.timedelta(0)
        return max(dt.timedelta(0), self.now - self.oldest_waiting)

    def lines(self) -> list[str]:
        if self.mode == "postgres":
            leading = f"leader: {self.leader}; building now: {self.building or 'nothing'}"
        else:
            leading = f"builds: one at a time per state directory; here: {self.leader}"
        if self.last_export is None:
            return [leading, "last export: none yet", "lag: unknown (no build has exported yet)"]
        ago = (self.now - self.last_export).total_seconds()
        exported = (
            f"last export that read new changes: {_iso(self.last_export)} ({ago:.0f} s ago)"
            f" by {self.exporter}"
        )
        if self.oldest_waiting is None:
            waiting = "lag: 0 s (no committed change waits to be published)"
        else:
            waiting = (
                f"lag: {self.lag.total_seconds():.0f} s (the oldest change waiting was"
                f" committed at {_iso(self.oldest_waiting)})"
            )
        return [leading, exported, waiting]


def current(using: str | None = None) -> Status:
    """The status of the builders of database ``using`` (default ``CHARTBUILD_DATABASE``)."""
    from django.utils import timezone
    from mqueue.models import MEvent

    from chartbuild.models import Change, Consumer

    using = using or conf.database()
    mode = conf.leader(using)
    now = timezone.now()
    if mode == "postgres" and connections[using].vendor == "postgresql":
        wrapper = connections[using]
        who = dblock.describe(dblock.current(wrapper, dblock.key(wrapper)))
        who = "nobody (no long-lived builder runs)" if who == "nobody" else who
        running = dblock.current(wrapper, dblock.key(wrapper, "chartbuild-build"))
        building = "" if running is None else dblock.describe(running)
    else:
        mode, building = "file", ""
        who = _local_builder()
    from chartbuild.build.handover import CONSUMER

    newest = (
        Consumer.objects.using(using).exclude(name__startswith=CONSUMER).order_by("-seen").first()
    )
    if newest is None:
        return Status(mode, who, now, building=building)
    marks = Consumer.objects.using(using).aggregate(
        events=Max("events_published"), capture=Max("capture_published")
    )
    events_mark, capture_mark = marks["events"] or 0, marks["capture"] or 0
    waiting = [
        MEvent.objects.using(using)
        .filter(id__gt=events_mark)
        .order_by("id")
        .values_list("date_posted", flat=True)
        .first(),
        Change.objects.using(using)
        .filter(id__gt=capture_mark)
        .exclude(table_name="")  # SQLite's export markers
        .order_by("id")
        .values_list("at", flat=True)
        .first(),
    ]
    oldest = min((w for w in waiting if w is not None), default=None)
    return Status(mode, who, now, newest.name, newest.seen, oldest, building)


def _local_builder() -> str:
    from chartbuild.build import lock

    holder = lock.holder(conf.state_dir())
    return f"a build runs ({holder})" if holder else "no build runs now"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")
