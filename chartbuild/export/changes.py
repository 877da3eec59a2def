"""What an export found, told for ``manage.py chartbuild why``: per table, the statements
that wrote it (their kind, rows, times, transactions, programs and who wrote); per model,
mqueue's events.

The exporter calls :func:`describe` for the tables and models whose changes it has just
counted, over the records above what it had read before (records committed late, below
that, are counted but not told). One grouped query per source, and a few newest records
as samples. What it finds is kept per model in ``<state>/explain/changes.json``, the
newest :data:`KEPT` exports of each, by the stamp generation they gave the model: a chart
built later finds there the changes between the stamps it was built from and today's.
Telling is best-effort: a failure to read or write it is logged and never stops an export.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connections

from chartbuild.files import write_if_changed

logger = logging.getLogger(__name__)

#: Sample records told per table.
SAMPLES = 3
#: Exports kept per model.
KEPT = 20


def path(state_dir: Path) -> Path:
    return state_dir / "explain" / "changes.json"


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return None if value is None else str(value)


def tables(using: str, low: int, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{table: what wrote it}`` from the change log's records above ``low``."""
    from chartbuild.models import Change  # imported with the build, before Django's apps

    names = sorted(set(names))
    if not names:
        return {}
    connection = connections[using]
    log = connection.ops.quote_name(Change._meta.db_table)
    marks = ", ".join(["%s"] * len(names))
    where = f"id > %s AND table_name IN ({marks})"
    found: dict[str, dict[str, Any]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT table_name, operation, COUNT(*), SUM(rows), MIN(at), MAX(at) FROM {log}"
            f" WHERE {where} GROUP BY table_name, operation",
            [low, *names],
        )
        for table, operation, count, rows, first, last in cursor.fetchall():
            entry = found.setdefault(
                table, {"records": 0, "operations": {}, "first": None, "last": None}
            )
            entry["records"] += count
            entry["operations"][operation or "write"] = {
                "records": count,
                "rows": None if rows is None else int(rows),
            }
            first, last = _iso(_datetime(connection, first)), _iso(_datetime(connection, last))
            entry["first"] = min(filter(None, [entry["first"], first]), default=None)
            entry["last"] = max(filter(None, [entry["last"], last]), default=None)
        cursor.execute(
            f"SELECT table_name, operation, rows, xact, program, context, at FROM {log}"
            f" WHERE {where} ORDER BY id DESC LIMIT %s",
            [low, *names, SAMPLES * len(names) * 4],
        )
        for table, operation, rows, xact, program, context, at in cursor.fetchall():
            samples = found.get(table, {}).setdefault("samples", [])
            if len(samples) < SAMPLES:
                samples.append(
                    {
                        "operation": operation or None,
                        "rows": rows,
                        "transaction": xact,
                        "program": program or None,
                        "by": context or None,
                        "at": _iso(_datetime(connection, at)),
                    }
                )
    return found


def _datetime(connection: Any, value: Any) -> Any:
    """A datetime as the ORM would give it (raw SQLite gives text)."""
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return value


def events(using: str, low: int, content_types: Iterable[int]) -> dict[str, dict[str, Any]]:
    """``{model label: its events}`` from mqueue's events above ``low``."""
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Count, Max, Min
    from mqueue.models import MEvent

    wanted = sorted(set(content_types))
    if not wanted:
        return {}
    found: dict[str, dict[str, Any]] = {}
    grouped = (
        MEvent.objects.using(using)
        .filter(id__gt=low, content_type_id__in=wanted)
        .values_list("content_type_id", "event_class")
        .annotate(n=Count("id"), first=Min("date_posted"), last=Max("date_posted"))
    )
    labels: dict[int, str] = {}
    for content_type, event_class, count, first, last in grouped:
        if content_type not in labels:
            model = ContentType.objects.db_manager(using).get_for_id(content_type).model_class()
            labels[content_type] = model._meta.label_lower if model else str(content_type)
        entry = found.setdefault(labels[content_type], {"events": 0, "kinds": {}})
        entry["events"] += count
        entry["kinds"][event_class or "event"] = count
        entry["first"] = min(filter(None, [entry.get("first"), _iso(first)]), default=None)
        entry["last"] = max(filter(None, [entry.get("last"), _iso(last)]), default=None)
    return found


def keep(state_dir: Path, found: dict[str, dict[str, Any]]) -> None:
    """Add this export's ``{model: what changed}`` to what is kept."""
    try:
        kept = load(state_dir)
        for model, entry in found.items():
            kept[model] = [*kept.get(model, [])[-(KEPT - 1) :], entry]
        target = path(state_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_if_changed(target, json.dumps(kept, indent=1, sort_keys=True) + "\n")
    except (OSError, TypeError, ValueError) as exc:
        logger.warning("cannot keep what the export found for `why` (%s)", exc)


def load(state_dir: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        data = json.loads(path(state_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe(
    using: str, low: dict[str, int], written: Iterable[str], content_types: Iterable[int]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """What wrote the tables ``written`` and the models of ``content_types`` above what an
    export had read before (``low`` per source); empty when the database cannot say."""
    try:
        return (
            tables(using, low.get("capture", 0), written),
            events(using, low.get("events", 0), content_types),
        )
    except DatabaseError as exc:
        logger.warning("cannot tell what the new changes were (%s)", exc)
        return {}, {}
