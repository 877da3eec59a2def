"""``manifest.json``: every chart and number, its task, models, reads and outputs.

Written once per build, after the charts it lists (see :mod:`chartbuild.build.actions`), and
only when its content changed: a build that rebuilt nothing leaves it untouched.

What an entry says of its last build (when, what it read, its outputs, its error) comes
from the chart's record. A build that touched a few generators reads only their records:
the entries of the others are taken from the manifest as it was, which every build that
wrote a record has brought up to date. A build that writes a record first marks the
manifest due (``<state>/manifest.due``) and clears the mark once it has written it: a
build that ended in between (killed, interrupted) leaves the mark, and the next build
writes the manifest from every record. A build that cannot write the manifest leaves the
previous one in place, whole (it lists the outputs that the site still serves), and the
mark: the next build writes it from every record.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from chartbuild import conf, names
from chartbuild.declare import catalog
from chartbuild.files import write_if_changed
from chartbuild.publish import outputs

#: The fields of an entry that come from the chart's record and its files.
BUILT_FIELDS = (
    "reads",
    "outputs",
    "built_at",
    "failed_at",
    "failing_since",
    "error",
    "inputs",
    "seconds",
)


def entries(
    cat: catalog.Catalog, *, previous: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """One entry per chart and number of ``cat``, with what its last build recorded.

    ``previous`` maps task names to entries whose build fields still hold (those of
    generators no build has touched since): they are not read again.
    """
    previous = previous or {}
    found = []
    for generator in cat.generators:
        for declaration in generator.declarations:
            task = names.task_name(generator.name, declaration.name)
            entry: dict[str, Any] = {
                "task": task,
                "generator": generator.name,
                "name": declaration.name,
                "kind": declaration.kind,
                "title": declaration.title,
                "models": list(declaration.models),
                "rollups": list(declaration.rollups),
            }
            kept = previous.get(task)
            if kept is not None and kept.get("kind") == declaration.kind:
                entry.update({k: kept[k] for k in BUILT_FIELDS if k in kept})
            else:
                entry.update(_built(generator.name, declaration))
            found.append(entry)
    return found


def _built(generator: str, declaration: Any) -> dict[str, Any]:
    out = conf.output_dir()
    record = outputs.read_record(generator, declaration.name)
    paths = outputs.paths(generator, declaration) + outputs.extra_csvs(
        generator, declaration.name, record.data_sets
    )
    if declaration.kind == "chart":
        paths.append(outputs.page(generator, declaration))
    fields: dict[str, Any] = {
        "reads": list(record.reads) if record.built_at else None,
        "outputs": [p for p in paths if (out / p).exists()],
        "built_at": record.built_at or None,
        "inputs": record.inputs or None,
        "seconds": record.seconds or None,
        "why": list(record.why) if record.built_at else None,
    }
    if record.error:
        fields["failed_at"] = record.failed_at
        fields["failing_since"] = record.failing_since or record.failed_at
        fields["error"] = record.error.splitlines()[0]
    return fields


def _current(unchanged: set[str]) -> dict[str, dict[str, Any]]:
    """The entries of the written manifest whose generator is in ``unchanged``."""
    try:
        data = json.loads((conf.output_dir() / outputs.manifest()).read_text())
        return {
            e["task"]: e
            for e in data["entries"]
            if isinstance(e, dict) and e.get("generator") in unchanged and "task" in e
        }
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def write(cat: catalog.Catalog, touched: Collection[str] | None = None) -> bool:
    """Write ``manifest.json``; return whether its content changed.

    ``touched``: the generators a build wrote anything of (None: every one); the
    entries of the others are kept as they are.
    """
    previous = None
    if touched is not None:
        previous = _current({g.name for g in cat.generators} - set(touched))
    text = json.dumps({"entries": entries(cat, previous=previous)}, indent=1, sort_keys=True)
    return write_if_changed(conf.output_dir() / outputs.manifest(), text + "\n")


def _due_path() -> Path:
    return conf.state_dir() / "manifest.due"


def mark_due() -> None:
    """Note that records are being written and the manifest is to be written after them."""
    path = _due_path()
    with contextlib.suppress(OSError):  # the record written next says what is wrong
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def is_due() -> bool:
    """Whether a build wrote records and ended before it wrote the manifest."""
    return _due_path().exists()


def clear_due() -> None:
    _due_path().unlink(missing_ok=True)
