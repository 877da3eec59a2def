"""The exporter: turns new change events into one stamp file per watched model.

django-mqueue writes an ``MEvent`` row in the same transaction as every change of
a tracked model. Each export runs one aggregate query over the events above a
*watermark* ``W``, grouped by model, and compares every model's ``(count, max id)``
with what the previous export saw above the same ``W``. A model whose pair moved
has new events: its generation goes up and its stamp file is rewritten. Nothing
else is written, so doit (which compares stamps by content) reruns exactly the
charts that read a changed model.

Why counts and not "ids above the last id seen": ids are allocated when a row is
inserted, not when it commits. On PostgreSQL a transaction can insert event 41,
let event 42 commit and be exported, and commit 41 afterwards. Event 41 then
raises its model's count above ``W`` and is noticed, where an id cursor would skip
it for ever.

The watermark only moves over ids that can no longer appear (see :class:`Horizon`):
- PostgreSQL: after its query an export records a checkpoint: ``M``, the largest id it
  saw, and the transactions then holding a ``RowExclusiveLock`` on the events table.
  A transaction takes that lock before it draws an id from the sequence and keeps it
  until it ends, so every transaction that may still commit an id at or below ``M``
  is in the list. Once none of them is left, ``W`` may move to ``M``.
- SQLite: writers are serialised and commit in id order: what one export saw is settled.
- Other backends: ``W`` stays at 0 and every export counts the whole table.

The cursor (watermark, checkpoints, per-model counts and generations) is saved
with :func:`~chartbuild.files.write_if_changed` after the stamps (and after their
folder is synced): a crash between the two repeats the change on the next run (an
extra rebuild, never a missed one). If the cursor is lost, or the event it last saw
has gone or changed (the database was replaced or flushed), every stamp moves to a
generation above the one it shows and the cursor starts again from 0.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connections
from django.db.models import Count, Max, Q

from chartbuild.files import sync_folder, write_if_changed

logger = logging.getLogger(__name__)

CURSOR_VERSION = 2
#: Pending checkpoints kept; dropping the oldest only delays the watermark.
MAX_CHECKPOINTS = 64


class Horizon:
    """How a database backend tells which event ids are settled.

    ``mark()`` is taken right after an export's query and stored with its checkpoint;
    ``busy()`` is taken before the next export's query. A checkpoint is settled when
    no name in its mark is still busy. ``busy()`` returning ``None`` means nothing
    ever settles, which keeps the exporter correct on any backend.
    """

    def __init__(self, using: str, table: str) -> None:
        self.using = using
        self.table = table

    def busy(self) -> set[str] | None:
        return None

    def mark(self) -> list[str]:
        return []

    @staticmethod
    def for_connection(using: str, table: str) -> Horizon:
        vendor = connections[using].vendor
        if vendor == "postgresql":
            return PostgresHorizon(using, table)
        if vendor == "sqlite":
            return SqliteHorizon(using, table)
        return Horizon(using, table)


class SqliteHorizon(Horizon):
    """SQLite has a single writer: every id an export saw is settled."""

    def busy(self) -> set[str]:
        return set()


class PostgresHorizon(Horizon):
    """The transactions that may be inserting events (``pg_locks``)."""

    def busy(self) -> set[str]:
        return set(self.mark())

    def mark(self) -> list[str]:
        with connections[self.using].cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT virtualtransaction FROM pg_locks"
                " WHERE locktype = 'relation' AND relation = to_regclass(%s)"
                " AND mode = 'RowExclusiveLock' AND pid IS DISTINCT FROM pg_backend_pid()",
                [self.table],
            )
            return sorted(row[0] for row in cursor.fetchall())


@dataclass
class Cursor:
    """What the exporter remembers between runs (stored as JSON)."""

    watermark: int = 0
    anchor: tuple[int, str] | None = None
    checkpoints: list[tuple[int, list[str]]] = field(default_factory=list)
    window: dict[str, tuple[int, int]] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Cursor | None:
        """The saved cursor, or ``None`` if there is none that this version can use."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            logger.warning("export cursor %s is unreadable; starting again from 0", path)
            return None
        if data.get("version") != CURSOR_VERSION:
            return None
        return cls(
            watermark=data["watermark"],
            anchor=tuple(data["anchor"]) if data["anchor"] else None,  # type: ignore[arg-type]
            checkpoints=[(top, list(mark)) for top, mark in data["checkpoints"]],
            window={k: (n, m) for k, (n, m) in data["window"].items()},
            generations=dict(data["generations"]),
        )

    def dumps(self) -> str:
        data: dict[str, Any] = {
            "version": CURSOR_VERSION,
            "watermark": self.watermark,
            "anchor": list(self.anchor) if self.anchor else None,
            "checkpoints": [list(c) for c in self.checkpoints],
            "window": {k: list(v) for k, v in sorted(self.window.items())},
            "generations": dict(sorted(self.generations.items())),
        }
        return json.dumps(data, indent=1) + "\n"


@dataclass(frozen=True)
class ExportResult:
    """Which models had new events, and where every watched model's stamp is."""

    changed: tuple[str, ...]
    stamps: dict[str, Path]


class Exporter:
    """Writes ``<state>/stamps/<app_label.model>.stamp`` for each watched model."""

    def __init__(self, models: Iterable[str], state_dir: Path, using: str = "default") -> None:
        self.models = sorted({m.lower() for m in models})
        self.state_dir = state_dir
        self.using = using

    @property
    def cursor_path(self) -> Path:
        return self.state_dir / "cursor.json"

    def stamp_path(self, model: str) -> Path:
        return stamp_path(self.state_dir, model)

    def run(self) -> ExportResult:
        """Export once: query, write the stamps that changed, then save the cursor."""
        from mqueue.models import MEvent

        events = MEvent.objects.using(self.using).order_by()
        horizon = Horizon.for_connection(self.using, MEvent._meta.db_table)
        cursor = Cursor.load(self.cursor_path)
        if cursor is None or not self._anchor_holds(events, cursor):
            if cursor is not None:
                logger.info("the events table was replaced or flushed; every stamp moves")
            cursor = Cursor(generations={m: self._generation_shown(m) + 1 for m in self.models})

        # Move the watermark over checkpoints that nothing can add events below any more.
        busy = horizon.busy()
        watermark = cursor.watermark
        pending = []
        for top, mark in cursor.checkpoints:
            if busy is not None and not busy.intersection(mark):
                watermark = max(watermark, top)
            else:
                pending.append((top, mark))
        pending = [(top, mark) for top, mark in pending if top > watermark]

        above_new = Q(id__gt=watermark)
        rows = (
            events.filter(id__gt=cursor.watermark, content_type__isnull=False)
            .values("content_type__app_label", "content_type__model")
            .annotate(
                n=Count("id"),
                top=Max("id"),
                n_new=Count("id", filter=above_new),
                top_new=Max("id", filter=above_new),
            )
        )
        seen: dict[str, tuple[int, int]] = {}
        window: dict[str, tuple[int, int]] = {}
        highest = 0
        for row in rows:
            label = f"{row['content_type__app_label']}.{row['content_type__model']}".lower()
            highest = max(highest, row["top"])
            seen[label] = (row["n"], row["top"])
            if row["n_new"]:
                window[label] = (row["n_new"], row["top_new"])

        changed = []
        for model in self.models:
            if seen.get(model) != cursor.window.get(model):
                cursor.generations[model] = cursor.generations.get(model, 0) + 1
                changed.append(model)
        if highest > watermark:
            if busy is not None:
                pending.append((highest, horizon.mark()))
            cursor.anchor = self._anchor(events, highest)

        stamps = {}
        written = False
        for model in self.models:
            path = stamps[model] = self.stamp_path(model)
            generation = cursor.generations.setdefault(model, 0)
            written |= write_if_changed(path, f"{model} {generation}\n")
        if written:
            sync_folder(stamp_folder(self.state_dir))  # stamps reach the disk before the cursor

        cursor.watermark = watermark
        cursor.checkpoints = pending[-MAX_CHECKPOINTS:]
        cursor.window = window
        write_if_changed(self.cursor_path, cursor.dumps())
        if changed:
            logger.debug("new events for %s", ", ".join(changed))
        return ExportResult(changed=tuple(changed), stamps=stamps)

    def _generation_shown(self, model: str) -> int:
        """The generation the stamp of ``model`` shows now (0 if it has none)."""
        try:
            return int(self.stamp_path(model).read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return 0

    @staticmethod
    def _anchor(events: Any, event_id: int) -> tuple[int, str]:
        """The last event seen, as ``(id, date posted)``, to recognise this table again."""
        posted = events.filter(pk=event_id).values_list("date_posted", flat=True)[:1]
        return (event_id, str(posted[0]) if posted else "")

    @classmethod
    def _anchor_holds(cls, events: Any, cursor: Cursor) -> bool:
        return cursor.anchor is None or cls._anchor(events, cursor.anchor[0]) == cursor.anchor


def stamp_folder(state_dir: Path) -> Path:
    return state_dir / "stamps"


def stamp_path(state_dir: Path, model: str) -> Path:
    """Where the stamp of ``model`` (``app_label.modelname``) lives."""
    return stamp_folder(state_dir) / f"{model.lower()}.stamp"
