"""The exporter: turns new change records into one stamp file per watched model.

Two tables record changes, each in the same transaction as the change it describes:
django-mqueue's events (``save()`` and ``delete()`` of tracked models) and chartbuild's
capture log (every write to a watched table, see :mod:`chartbuild.capture.triggers`). Each is a
:class:`Source`. Each export runs one aggregate query per source over the records above
that source's *watermark* ``W``, grouped by model (events) or table (the log), and
compares every group's ``(count, max id)`` with what the previous export saw above the
same ``W``. The tables of the groups that moved have changed; so has every watched model
that reads one of them (:mod:`chartbuild.declare.tables`): its generation goes up and its stamp
file is rewritten. Nothing else is written, so doit (which compares stamps by content)
reruns exactly the charts that read a changed model.

Why counts and not "ids above the last id seen": ids are allocated when a row is
inserted, not when it commits. On PostgreSQL a transaction can insert record 41, let 42
commit and be exported, and commit 41 afterwards. Record 41 then raises its group's
count above ``W`` and is noticed, where an id cursor would skip it for ever. The
watermark only moves over ids no transaction can still commit (:mod:`chartbuild.export.horizon`).

Records below the watermark are settled: the exporter deletes those of the capture log
(in batches) and, with ``CHARTBUILD_KEEP_EVENTS``, mqueue's events older than that, so
an export costs what is new, not what has been. Several state directories may export
from one database: each registers its watermarks (:class:`Consumers`) before it reads,
and records are deleted only below the smallest.

The cursor (epoch, per-source watermarks, checkpoints and counts, per-model generations)
is saved with :func:`~chartbuild.files.write_if_changed` after the stamps (and after
their folder is synced): a crash between the two repeats the change on the next run (an
extra rebuild, never a missed one). A stamp reads ``<model> <epoch>.<generation>``. The
epoch is drawn afresh whenever the cursor is lost or unreadable, when the last record a
source saw has gone or changed (the database was replaced or flushed), or when a reset
is requested (:func:`forget`): every stamp then holds a content doit has never seen, and
everything is rebuilt.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from django.db import DatabaseError, connections

from chartbuild.declare import tables
from chartbuild.export import changes
from chartbuild.export.horizon import Horizon
from chartbuild.files import sync_folder, write_if_changed

logger = logging.getLogger(__name__)

CURSOR_VERSION = 3
#: Pending checkpoints kept; dropping the oldest only delays the watermark.
MAX_CHECKPOINTS = 64
#: Settled records deleted per statement.
PRUNE_BATCH = 10_000
#: Above this many new records, SQLite counts them through the grouping key's index.
MANY_PENDING = 50_000

Row = tuple[str, int, int, int, int | None]


@dataclass
class SourceState:
    """What the exporter remembers of one source between runs."""

    watermark: int = 0
    anchor: tuple[int, str] | None = None
    checkpoints: list[tuple[int, list[str], float]] = field(default_factory=list)
    window: dict[str, tuple[int, int]] = field(default_factory=dict)
    pruned: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceState:
        return cls(
            watermark=data["watermark"],
            anchor=(data["anchor"][0], data["anchor"][1]) if data["anchor"] else None,
            checkpoints=[(top, list(mark), at) for top, mark, at in data["checkpoints"]],
            window={k: (n, m) for k, (n, m) in data["window"].items()},
            pruned=data.get("pruned", 0),
        )

    @property
    def read(self) -> int:
        """The newest record an export has read."""
        return max(self.watermark, self.anchor[0] if self.anchor else 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark,
            "anchor": list(self.anchor) if self.anchor else None,
            "checkpoints": [list(c) for c in self.checkpoints],
            "window": {k: list(v) for k, v in sorted(self.window.items())},
            "pruned": self.pruned,
        }


@dataclass
class ExportCursor:
    """What the exporter remembers between runs (stored as JSON)."""

    epoch: str = field(default_factory=lambda: secrets.token_hex(4))
    sources: dict[str, SourceState] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ExportCursor | None:
        """The saved cursor, or ``None`` if there is none that this version can use."""
        try:
            data = json.loads(path.read_text())
            if data.get("version") != CURSOR_VERSION:
                return None
            return cls(
                epoch=str(data["epoch"]),
                sources={k: SourceState.from_dict(v) for k, v in data["sources"].items()},
                generations={k: int(v) for k, v in data["generations"].items()},
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("export cursor %s is unreadable (%s): every chart is rebuilt", path, exc)
            return None

    def dumps(self) -> str:
        data: dict[str, Any] = {
            "version": CURSOR_VERSION,
            "epoch": self.epoch,
            "sources": {k: v.as_dict() for k, v in sorted(self.sources.items())},
            "generations": dict(sorted(self.generations.items())),
        }
        return json.dumps(data, indent=1) + "\n"


class Source:
    """A table of change records: what one aggregate query over it says has changed."""

    name: ClassVar[str]

    def __init__(self, using: str) -> None:
        self.using = using
        self.connection = connections[using]

    @property
    def table(self) -> str:
        raise NotImplementedError

    def quote(self, name: str) -> str:
        return str(self.connection.ops.quote_name(name))

    def read(self, low: int, new: int) -> tuple[list[Row], int]:
        """``(key, count, max id, count above new, max id above new)`` per group of the
        records above ``low``, and the id of a record the read added (0 if none)."""
        return self.aggregate(low, new), 0

    def aggregate(self, low: int, new: int) -> list[Row]:
        raise NotImplementedError

    #: Whether ``key`` has an index of its own (SQLite then reads it instead of the rows
    #: when most of the table is pending).
    indexed = False

    def _aggregate(self, key: str, where: str, low: int, new: int) -> list[Row]:
        table = self.quote(self.table)
        windowed = new != low  # else the counts above `new` are the counts themselves
        columns = f"{key}, COUNT(*), MAX(id)"
        if windowed:
            columns += ", COUNT(CASE WHEN id > %s THEN 1 END), MAX(CASE WHEN id > %s THEN id END)"
        ids, group = "id", key
        if self.connection.vendor == "sqlite":
            # SQLite picks one index: the id range (what is new: O(new) in steady state), or
            # the key's own index (narrow rows, already grouped) when most rows are new.
            if self.indexed and self._pending(low) > MANY_PENDING:
                ids = "+id"
            else:
                group = f"+{key}"
        sql = f"SELECT {columns} FROM {table} WHERE {ids} > %s{where} GROUP BY {group}"
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [new, new, low] if windowed else [low])
            if windowed:
                return [(str(k), n, top, n_new, top_new) for k, n, top, n_new, top_new in cursor]
            return [(str(k), n, top, n, top) for k, n, top in cursor]

    def _pending(self, low: int) -> int:
        """About how many records lie above ``low`` (ids are drawn in order)."""
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT MAX(id) FROM {self.quote(self.table)}")
            (top,) = cursor.fetchone()
        return int(top or 0) - low

    def anchor(self, record: int) -> tuple[int, str] | None:
        """The record ``record`` as ``(id, time)``, to recognise this table again."""
        raise NotImplementedError

    def tables(self, key: str) -> frozenset[str]:
        """The tables whose change the group ``key`` records."""
        raise NotImplementedError

    def prune(self, upto: int, state: SourceState) -> int:
        """Delete settled records (ids up to ``upto``); return how many went."""
        return 0


class EventsSource(Source):
    """django-mqueue's events, grouped by content type."""

    name = "events"
    indexed = True  # mqueue indexes content_type_id

    def __init__(self, using: str, keep: timedelta | None = None) -> None:
        super().__init__(using)
        self.keep = keep
        self._labels: dict[str, str] = {}

    @property
    def table(self) -> str:
        from mqueue.models import MEvent

        return str(MEvent._meta.db_table)

    def aggregate(self, low: int, new: int) -> list[Row]:
        return self._aggregate("content_type_id", " AND content_type_id IS NOT NULL", low, new)

    def anchor(self, record: int) -> tuple[int, str] | None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT date_posted FROM {self.quote(self.table)} WHERE id = %s", [record]
            )
            row = cursor.fetchone()
        return (record, str(row[0])) if row else None

    def tables(self, key: str) -> frozenset[str]:
        from django.contrib.contenttypes.models import ContentType

        try:
            model = ContentType.objects.db_manager(self.using).get_for_id(int(key)).model_class()
        except ContentType.DoesNotExist:
            return frozenset()
        return tables.written_by(model) if model is not None else frozenset()

    def prune(self, upto: int, state: SourceState) -> int:
        """With ``CHARTBUILD_KEEP_EVENTS``, delete settled events older than that.

        Events are walked from the oldest in batches and the walk stops at the first one
        that is young enough to keep (ids follow posting times), so when nothing is due
        this costs one indexed row.
        """
        if self.keep is None:
            return 0
        from django.utils import timezone
        from mqueue.models import MEvent

        cutoff = timezone.now() - self.keep
        events = MEvent.objects.using(self.using)
        deleted = 0
        while True:
            oldest = list(
                events.filter(id__lte=upto)
                .order_by("id")
                .values_list("id", "date_posted")[:PRUNE_BATCH]
            )
            due = [pk for pk, posted in itertools.takewhile(lambda r: r[1] < cutoff, oldest)]
            if due:
                deleted += events.filter(id__in=due).delete()[0]
            if len(due) < PRUNE_BATCH:
                return deleted


class CaptureSource(Source):
    """chartbuild's capture log (:class:`~chartbuild.models.Change`), grouped by table.

    On SQLite the log's triggers skip a row when the newest record is already one of
    its table's, so a read ends by adding an empty *marker* record whenever the newest
    one is a real one: any write after the read then records again. The read and the
    marker happen under SQLite's write lock (``BEGIN IMMEDIATE``), so no write can slip
    between them.
    """

    name = "capture"

    @property
    def table(self) -> str:
        from chartbuild.models import Change

        return str(Change._meta.db_table)

    def read(self, low: int, new: int) -> tuple[list[Row], int]:
        if self.connection.vendor != "sqlite":
            return self.aggregate(low, new), 0
        self.connection.ensure_connection()
        if self.connection.in_atomic_block or not self.connection.get_autocommit():
            # The marker must outlive this read: a transaction that rolls it back would
            # leave a table's later writes unrecorded.
            raise RuntimeError("the exporter must run outside a transaction (atomic block)")
        with self.connection.cursor() as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                rows = self.aggregate(low, new)
                cursor.execute(
                    f"SELECT table_name FROM {self.quote(self.table)} ORDER BY id DESC LIMIT 1"
                )
                newest = cursor.fetchone()
                marker = 0
                if newest is not None and newest[0] != "":
                    cursor.execute(f"INSERT INTO {self.quote(self.table)} (table_name) VALUES ('')")
                    marker = int(cursor.lastrowid)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return rows, marker

    def aggregate(self, low: int, new: int) -> list[Row]:
        return self._aggregate("table_name", "", low, new)

    def anchor(self, record: int) -> tuple[int, str] | None:
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT at FROM {self.quote(self.table)} WHERE id = %s", [record])
            row = cursor.fetchone()
        return (record, str(row[0])) if row else None

    def tables(self, key: str) -> frozenset[str]:
        return frozenset([key]) if key else frozenset()

    def prune(self, upto: int, state: SourceState) -> int:
        if upto <= state.pruned:
            return 0
        log = self.quote(self.table)
        deleted = 0
        with self.connection.cursor() as cursor:
            while True:
                cursor.execute(
                    f"DELETE FROM {log} WHERE id IN (SELECT id FROM {log} WHERE id <= %s"
                    f" ORDER BY id LIMIT {PRUNE_BATCH})",
                    [upto],
                )
                deleted += max(cursor.rowcount, 0)
                if cursor.rowcount < PRUNE_BATCH:
                    break
        state.pruned = upto
        return deleted


@dataclass(frozen=True)
class ExportResult:
    """Which models had new changes, and where every watched model's stamp is."""

    changed: tuple[str, ...]
    stamps: dict[str, Path]
    #: The newest record of each source this export read: the build that publishes what
    #: it exported records them (:meth:`Consumers.note_published`).
    read: dict[str, int] = field(default_factory=dict)


class Exporter:
    """Writes ``<state>/stamps/<app_label.model>.stamp`` for each watched model."""

    def __init__(
        self,
        models: Iterable[str],
        state_dir: Path,
        using: str = "default",
        *,
        keep_events: timedelta | None = None,
    ) -> None:
        self.models = sorted({m.lower() for m in models})
        self.state_dir = state_dir
        self.using = using
        self.keep_events = keep_events

    @property
    def cursor_path(self) -> Path:
        return cursor_path(self.state_dir)

    def stamp_path(self, model: str) -> Path:
        return stamp_path(self.state_dir, model)

    def sources(self) -> list[Source]:
        return [EventsSource(self.using, keep=self.keep_events), CaptureSource(self.using)]

    def run(self) -> ExportResult:
        """Export once: query, write the stamps that changed, save the cursor, prune."""
        sources = self.sources()
        cursor = ExportCursor.load(self.cursor_path)
        if cursor is not None and not all(self._anchor_holds(s, cursor) for s in sources):
            logger.warning("the change tables were replaced or flushed: every chart is rebuilt")
            cursor = None
        if cursor is None:
            cursor = ExportCursor()
        # Before reading: no other exporter may prune what this one has not settled yet.
        consumers = Consumers(self.using, consumer_name(self.state_dir))
        floor = consumers.register(
            {s.name: cursor.sources.get(s.name, SourceState()).watermark for s in sources}
        )

        changed_tables: set[str] = set()
        read_before = {name: state.read for name, state in cursor.sources.items()}
        changed_keys: dict[str, set[str]] = {}
        for source in sources:
            state = cursor.sources.get(source.name, SourceState())
            keys, cursor.sources[source.name] = self._export(source, state)
            changed_keys[source.name] = keys
            for key in keys:
                changed_tables |= source.tables(key)

        reads = tables.of_models(self.models)
        changed = [m for m in self.models if reads.get(m, frozenset()) & changed_tables]
        for model in changed:
            cursor.generations[model] = cursor.generations.get(model, 0) + 1
        if changed:
            self._tell(cursor, changed, reads, read_before, changed_keys)

        stamps = {}
        written = False
        for model in self.models:
            path = stamps[model] = self.stamp_path(model)
            generation = cursor.generations.setdefault(model, 0)
            written |= write_if_changed(
                path, f"{model} {cursor.epoch}.{generation}\n", durable=True
            )
        if written:
            sync_folder(stamp_folder(self.state_dir))  # stamps reach the disk before the cursor
        write_if_changed(self.cursor_path, cursor.dumps(), durable=True)

        try:
            self._prune(sources, cursor, floor)
        except DatabaseError as exc:  # the stamps are right; the next export prunes
            logger.warning("cannot delete settled change records now: %s", exc)
        if changed:
            logger.debug("new changes of %s", ", ".join(changed))
        read = {name: state.read for name, state in cursor.sources.items()}
        return ExportResult(changed=tuple(changed), stamps=stamps, read=read)

    def _tell(
        self,
        cursor: ExportCursor,
        changed: list[str],
        reads: dict[str, frozenset[str]],
        read_before: dict[str, int],
        keys: dict[str, set[str]],
    ) -> None:
        """Keep what wrote the changed models' tables, for ``manage.py chartbuild why``."""
        from django.utils import timezone

        content_types = [int(k) for k in keys.get("events", ()) if k.isdigit()]
        written, events = changes.describe(
            self.using, read_before, keys.get("capture", ()), content_types
        )
        exported_at = timezone.now().isoformat(timespec="milliseconds")
        found = {}
        for model in changed:
            model_tables = reads.get(model, frozenset())
            found[model] = {
                "epoch": cursor.epoch,
                "generation": cursor.generations[model],
                "exported_at": exported_at,
                "tables": {t: written[t] for t in sorted(model_tables) if t in written},
                "events": {
                    label: entry
                    for label, entry in events.items()
                    if _written_by(label) & model_tables
                },
            }
        changes.keep(self.state_dir, found)

    def _export(self, source: Source, state: SourceState) -> tuple[set[str], SourceState]:
        """The groups of ``source`` that changed since ``state``, and its next state."""
        horizon = Horizon.for_connection(self.using, source.table)
        # Move the watermark over checkpoints that nothing can add records below any more.
        busy = horizon.busy()
        watermark = state.watermark
        pending = []
        for top, mark, at in state.checkpoints:
            holding = busy.intersection(mark) if busy is not None else None
            if holding is not None and not holding:
                watermark = max(watermark, top)
            else:
                pending.append((top, mark, at))
                if holding:
                    horizon.warn_held(holding, at)
        pending = [c for c in pending if c[0] > watermark]

        rows, added = source.read(state.watermark, watermark)
        seen: dict[str, tuple[int, int]] = {}
        window: dict[str, tuple[int, int]] = {}
        highest = added
        for key, n, top, n_new, top_new in rows:
            highest = max(highest, top)
            if key:
                seen[key] = (n, top)
                if n_new and top_new is not None:
                    window[key] = (n_new, top_new)
        changed = {
            k for k in seen.keys() | state.window.keys() if seen.get(k) != state.window.get(k)
        }

        anchor = state.anchor
        if highest > watermark:
            if busy is not None:
                pending.append((highest, horizon.mark(), time.time()))
            anchor = source.anchor(highest)
        return changed, SourceState(
            watermark=watermark,
            anchor=anchor,
            checkpoints=pending[-MAX_CHECKPOINTS:],
            window=window,
            pruned=state.pruned,
        )

    @staticmethod
    def _anchor_holds(source: Source, cursor: ExportCursor) -> bool:
        state = cursor.sources.get(source.name)
        if state is None or state.anchor is None:
            return True
        return source.anchor(state.anchor[0]) == state.anchor

    def _prune(self, sources: list[Source], cursor: ExportCursor, floor: dict[str, int]) -> None:
        """Delete the records every exporter of this database has settled.

        Below the smallest registered watermark, which also keeps every exporter's anchor
        (an anchor is at or above its exporter's watermark).
        """
        for source in sources:
            state = cursor.sources[source.name]
            upto = min(state.watermark, floor.get(source.name, 0)) - 1
            deleted = source.prune(upto, state) if upto > 0 else 0
            if deleted:
                logger.debug("deleted %d settled records of %s", deleted, source.table)
        write_if_changed(self.cursor_path, cursor.dumps())


#: An exporter not seen for this long no longer holds the pruning of the others back.
CONSUMER_TTL = timedelta(days=7)
#: How often an exporter whose watermarks did not move says it is still there.
CONSUMER_REFRESH = timedelta(hours=1)


def consumer_name(state_dir: Path) -> str:
    """This exporter's name among those of its database: host and state directory."""
    name = f"{socket.gethostname()}:{state_dir.absolute()}"
    if len(name) > 255:
        name = name[:190] + ":" + hashlib.sha256(name.encode()).hexdigest()
    return name


class Consumers:
    """The exporters of one database (:class:`~chartbuild.models.Consumer`)."""

    def __init__(self, using: str, name: str) -> None:
        self.using = using
        self.name = name

    def register(self, watermarks: dict[str, int]) -> dict[str, int]:
        """Record this exporter's watermarks; return each source's smallest over all of them."""
        from django.utils import timezone

        from chartbuild.models import Consumer

        now = timezone.now()
        rows = {row.name: row for row in Consumer.objects.using(self.using)}
        own = rows.get(self.name)
        values = {"events": watermarks.get("events", 0), "capture": watermarks.get("capture", 0)}
        if (
            own is None
            or (own.events, own.capture) != tuple(values.values())
            or (now - own.seen > CONSUMER_REFRESH)
        ):
            # One statement: this exporter alone writes its row (under the build lock)
            mine = Consumer.objects.using(self.using).filter(name=self.name)
            if not mine.update(**values, seen=now):
                Consumer.objects.using(self.using).get_or_create(
                    name=self.name, defaults={**values, "seen": now}
                )
            rows[self.name] = Consumer(name=self.name, **values, seen=now)
        gone = [name for name, row in rows.items() if now - row.seen > CONSUMER_TTL]
        if gone:
            logger.info(
                "exporters not seen for %s no longer hold pruning back: %s", CONSUMER_TTL, gone
            )
            Consumer.objects.using(self.using).filter(name__in=gone).delete()
        live = [row for name, row in rows.items() if name not in gone]
        return {key: min(getattr(row, key) for row in live) for key in values}

    def note_published(self, newest: dict[str, int]) -> None:
        """Record the newest record of each source that a publication now contains (what
        the export of the build that published read), if they are new."""
        from django.utils import timezone

        from chartbuild.models import Consumer

        values = {f"{key}_published": newest.get(key, 0) for key in ("events", "capture")}
        Consumer.objects.using(self.using).filter(name=self.name).exclude(**values).update(
            **values, seen=timezone.now()
        )


def newest_change(using: str) -> int:
    """The id of the newest record of chartbuild's change log (0 if it is empty): above what
    an export read, a write committed since."""
    from django.db.models import Max

    from chartbuild.models import Change

    return int(Change.objects.using(using).aggregate(newest=Max("id"))["newest"] or 0)


def _written_by(label: str) -> frozenset[str]:
    try:
        return tables.written_by(label)
    except LookupError:
        return frozenset()


def cursor_path(state_dir: Path) -> Path:
    return state_dir / "cursor.json"


def forget(state_dir: Path) -> None:
    """Make the next export start a new epoch: every stamp changes, everything is rebuilt."""
    cursor_path(state_dir).unlink(missing_ok=True)


def stamp_folder(state_dir: Path) -> Path:
    return state_dir / "stamps"


def stamp_path(state_dir: Path, model: str) -> Path:
    """Where the stamp of ``model`` (``app_label.modelname``) lives."""
    return stamp_folder(state_dir) / f"{model.lower()}.stamp"
