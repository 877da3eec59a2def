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
- PostgreSQL: an export records ``(M, X)``: ``M`` the largest id it saw, ``X`` the
  snapshot's ``xmax``. Any invisible event at or below ``M`` belongs to a
  transaction that was running then, whose xid is below ``X`` (mqueue inserts
  its event after the tracked row, so that transaction already had an xid). Once
  the oldest running transaction (``pg_snapshot_xmin``) is at or above ``X``,
  those have all ended and ``W`` may move to ``M``.
- SQLite: writers are serialised and commit in id order: what one export saw is settled.
- Other backends: ``W`` stays at 0 and every export counts the whole table.

The cursor (watermark, checkpoints, per-model counts and generations) is saved
with :func:`~chartbuild.files.write_if_changed` after the stamps: a crash between
the two repeats the change on the next run (an extra rebuild, never a missed one).
If the event the cursor last saw has gone or changed (the database was replaced or
flushed), every stamp moves and the cursor starts again from 0.
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

from chartbuild.files import write_if_changed

logger = logging.getLogger(__name__)

CURSOR_VERSION = 1
#: Pending checkpoints kept; dropping the oldest only delays the watermark.
MAX_CHECKPOINTS = 64


class Horizon:
    """How a database backend tells which event ids are settled.

    ``now()`` returns a number compared with the ``mark()`` saved by earlier
    exports: a checkpoint whose mark is at or below it is settled. ``None`` means
    nothing ever settles, which keeps the exporter correct on any backend.
    """

    def __init__(self, using: str) -> None:
        self.using = using

    def now(self) -> int | None:
        return None

    def mark(self) -> int:
        return 0

    @staticmethod
    def for_connection(using: str) -> Horizon:
        vendor = connections[using].vendor
        if vendor == "postgresql":
            return PostgresHorizon(using)
        if vendor == "sqlite":
            return SqliteHorizon(using)
        return Horizon(using)


class SqliteHorizon(Horizon):
    """SQLite has a single writer: every id an export saw is settled."""

    def now(self) -> int:
        return 0


class PostgresHorizon(Horizon):
    """Transaction ids from ``pg_current_snapshot()``."""

    def _snapshot(self, function: str) -> int:
        with connections[self.using].cursor() as cursor:
            cursor.execute(f"SELECT {function}(pg_current_snapshot())::text::bigint")
            return int(cursor.fetchone()[0])

    def now(self) -> int:
        return self._snapshot("pg_snapshot_xmin")

    def mark(self) -> int:
        return self._snapshot("pg_snapshot_xmax")


@dataclass
class Cursor:
    """What the exporter remembers between runs (stored as JSON)."""

    database: str = ""
    watermark: int = 0
    anchor: tuple[int, str] | None = None
    checkpoints: list[tuple[int, int]] = field(default_factory=list)
    window: dict[str, tuple[int, int]] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Cursor:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except ValueError:
            logger.warning("export cursor %s is unreadable; starting again from 0", path)
            return cls()
        if data.get("version") != CURSOR_VERSION:
            return cls()
        return cls(
            database=data["database"],
            watermark=data["watermark"],
            anchor=tuple(data["anchor"]) if data["anchor"] else None,  # type: ignore[arg-type]
            checkpoints=[(m, x) for m, x in data["checkpoints"]],
            window={k: (n, m) for k, (n, m) in data["window"].items()},
            generations=dict(data["generations"]),
        )

    def dumps(self) -> str:
        data: dict[str, Any] = {
            "version": CURSOR_VERSION,
            "database": self.database,
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
        horizon = Horizon.for_connection(self.using)
        cursor = Cursor.load(self.cursor_path)
        identity = self._database_identity()
        if cursor.database != identity or not self._anchor_holds(events, cursor):
            if cursor.database:
                logger.info("events table was replaced; all stamps move")
            cursor = Cursor(
                database=identity,
                generations={m: g + 1 for m, g in cursor.generations.items()},
            )

        # Move the watermark over checkpoints that nothing can add events below any more.
        settled_by = horizon.now()
        watermark = cursor.watermark
        pending = []
        for top, mark in cursor.checkpoints:
            if settled_by is not None and mark <= settled_by:
                watermark = max(watermark, top)
            elif top > watermark:
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
            label = f"{row['content_type__app_label']}.{row['content_type__model']}"
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
            pending.append((highest, horizon.mark()))
            cursor.anchor = self._anchor(events, highest)

        stamps = {}
        for model in self.models:
            path = stamps[model] = self.stamp_path(model)
            generation = cursor.generations.setdefault(model, 0)
            write_if_changed(path, f"{model} {generation}\n")

        cursor.watermark = watermark
        cursor.checkpoints = pending[-MAX_CHECKPOINTS:]
        cursor.window = window
        write_if_changed(self.cursor_path, cursor.dumps())
        if changed:
            logger.debug("new events for %s", ", ".join(changed))
        return ExportResult(changed=tuple(changed), stamps=stamps)

    def _database_identity(self) -> str:
        settings_dict = connections[self.using].settings_dict
        return f"{connections[self.using].vendor}:{settings_dict['HOST']}:{settings_dict['NAME']}"

    @staticmethod
    def _anchor(events: Any, event_id: int) -> tuple[int, str]:
        posted = events.filter(pk=event_id).values_list("date_posted", flat=True)[:1]
        return (event_id, str(posted[0]) if posted else "")

    @staticmethod
    def _anchor_holds(events: Any, cursor: Cursor) -> bool:
        if cursor.anchor is None:
            return True
        event_id, posted = cursor.anchor
        found = events.filter(pk=event_id).values_list("date_posted", flat=True)[:1]
        return bool(found) and str(found[0]) == posted


def stamp_path(state_dir: Path, model: str) -> Path:
    """Where the stamp of ``model`` (``app_label.modelname``) lives."""
    return state_dir / "stamps" / f"{model.lower()}.stamp"
