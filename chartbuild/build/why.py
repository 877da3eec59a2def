"""Why each chart and number was built, kept with it and in a short history.

A build records, with each chart, what it was built from (its *basis*: its models'
stamps and its generator's source digest) and why it ran, by comparing that with the
previous build's basis:

- ``never built``: it had no earlier build;
- ``failed before``: its last build had failed;
- ``code``: its generator's source changed (a new chart, a changed declaration or query);
- ``changed``: a model it reads has a new stamp: the exports between the two stamps tell
  which tables changed, by which statements (kinds, rows, times, transactions, programs,
  who wrote) and which mqueue events (:mod:`chartbuild.export.changes`);
- ``reset``: every stamp is new (the export cursor was lost or reset: everything runs);
- ``forced``: nothing it reads changed (``doit -a``, ``doit forget``, a missing output).

The reasons go to the chart's record (so the manifest, for staff, and the chart's page
show the last ones) and to ``<state>/explain/history/<task>.json``, the newest
:data:`HISTORY` builds. ``manage.py chartbuild why`` prints them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chartbuild.files import write_if_changed

logger = logging.getLogger(__name__)

#: Builds kept in a chart's history.
HISTORY = 10


def history_path(state_dir: Path, task: str) -> Path:
    return state_dir / "explain" / "history" / f"{task}.json"


def basis(source: str, stamps: Mapping[str, str]) -> dict[str, Any]:
    """What a chart is built from: its generator's source digest, its models' stamps."""
    return {"code": source, "stamps": dict(sorted(stamps.items()))}


def _generation(stamp: str) -> tuple[str, int] | None:
    """``(epoch, generation)`` of a stamp's text (``<model> <epoch>.<generation>``)."""
    try:
        epoch, generation = stamp.split()[1].split(".")
        return epoch, int(generation)
    except (IndexError, ValueError):
        return None


def reasons(
    previous: Mapping[str, Any] | None,
    now: Mapping[str, Any],
    *,
    built_before: bool,
    failed_before: str,
    source_path: str,
    changes: Mapping[str, list[dict[str, Any]]],
    rollups: Mapping[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Why a chart with ``previous`` basis (None: unknown) is built from ``now``'s."""
    found: list[dict[str, Any]] = []
    if not built_before:
        found.append({"kind": "never built"})
    if failed_before:
        found.append({"kind": "failed before", "error": failed_before.splitlines()[0]})
    if previous is None:
        return found or [{"kind": "unknown", "detail": "no basis recorded by its last build"}]
    if previous.get("code") != now.get("code"):
        found.append({"kind": "code", "path": source_path})
    before, after = previous.get("stamps", {}), now.get("stamps", {})
    moved = sorted(m for m in after if before.get(m) != after[m])
    epochs = {(_generation(after[m]) or ("", 0))[0] for m in after} - {""}
    old_epochs = {(_generation(before.get(m, "")) or ("", 0))[0] for m in after} - {""}
    if moved and epochs and old_epochs and not epochs & old_epochs:
        found.append({"kind": "reset", "detail": "the export cursor started a new epoch"})
        return found
    for model in moved:
        low = _generation(before.get(model, ""))
        high = _generation(after[model])
        exports = [
            entry
            for entry in changes.get(model, [])
            if high is not None
            and entry.get("epoch") == high[0]
            and (low is None or low[0] != high[0] or entry.get("generation", 0) > low[1])
            and entry.get("generation", 0) <= high[1]
        ]
        reason: dict[str, Any] = {"kind": "changed", "model": model, "exports": exports}
        through = (rollups or {}).get(model)
        if through:
            reason["rollups"] = through
        found.append(reason)
    return found or [{"kind": "forced", "detail": "nothing it reads or runs changed"}]


def record(state_dir: Path, task: str, at: str, outcome: str, why: list[dict[str, Any]]) -> None:
    """Add a build to ``task``'s history (best-effort)."""
    target = history_path(state_dir, task)
    try:
        builds = history(state_dir, task)
        builds.insert(0, {"at": at, "outcome": outcome, "why": why})
        target.parent.mkdir(parents=True, exist_ok=True)
        write_if_changed(target, json.dumps(builds[:HISTORY], indent=1) + "\n")
    except (OSError, TypeError, ValueError) as exc:
        logger.warning("cannot keep why %s was built (%s)", task, exc)


def history(state_dir: Path, task: str) -> list[dict[str, Any]]:
    """``task``'s recorded builds, newest first."""
    try:
        data = json.loads(history_path(state_dir, task).read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def lines(why: list[dict[str, Any]]) -> list[str]:
    """Each reason as a sentence."""
    told = []
    for reason in why:
        kind = reason.get("kind")
        if kind == "never built":
            told.append("it had never been built")
        elif kind == "failed before":
            told.append(f"its last build had failed: {reason.get('error', '')}")
        elif kind == "code":
            told.append(f"its generator's code changed ({reason.get('path') or 'its source'})")
        elif kind == "reset":
            told.append("everything was rebuilt: the export state started afresh")
        elif kind == "changed":
            told.extend(_changed(reason))
        elif kind == "forced":
            told.append("forced: nothing it reads or runs had changed")
        else:
            told.append(str(reason.get("detail") or kind))
    return told


def _changed(reason: dict[str, Any]) -> list[str]:
    model = reason.get("model", "?")
    via = reason.get("rollups")
    head = f"{model} changed" + (f" (read through rollup {', '.join(via)})" if via else "")
    exports = reason.get("exports") or []
    if not exports:
        return [f"{head}: its stamp moved (no detail kept of that export)"]
    told = []
    for export in exports:
        for table, entry in sorted((export.get("tables") or {}).items()):
            kinds = ", ".join(
                f"{op} ({_rows(part['rows'])})"
                if part.get("rows") is not None
                else f"{op} x{part['records']}"
                for op, part in sorted(entry.get("operations", {}).items())
            )
            told.append(f"{head}: {table} written by {kinds}, committed {_span(entry)}")
            for sample in entry.get("samples", []):
                told.append("    " + _sample(sample))
        for label, entry in sorted((export.get("events") or {}).items()):
            kinds = ", ".join(f"{k} x{n}" for k, n in sorted(entry.get("kinds", {}).items()))
            told.append(f"{head}: mqueue events of {label}: {kinds}")
    return told or [f"{head}: its stamp moved"]


def _rows(rows: int) -> str:
    return f"{rows:,} row{'' if rows == 1 else 's'}"


def _span(entry: dict[str, Any]) -> str:
    first, last = entry.get("first"), entry.get("last")
    if first and last and first != last:
        return f"from {first} to {last}"
    return f"at {first or last or 'an unknown time'}"


def _sample(sample: dict[str, Any]) -> str:
    parts = [str(sample.get("operation") or "write")]
    if sample.get("rows") is not None:
        parts.append(_rows(sample["rows"]))
    if sample.get("at"):
        parts.append(f"at {sample['at']}")
    if sample.get("by"):
        parts.append(f"by {sample['by']}")
    if sample.get("transaction") is not None:
        parts.append(f"transaction {sample['transaction']}")
    if sample.get("program"):
        parts.append(f"program {sample['program']!r}")
    return " ".join(parts)
