"""``manifest.json``: every chart and number, its task, models, reads and outputs.

Written once per build, after the charts it lists (see :mod:`chartbuild.actions`), and
only when its content changed: a build that rebuilt nothing leaves it untouched.
"""

from __future__ import annotations

import json
from typing import Any

from chartbuild import catalog, conf, outputs
from chartbuild.files import write_if_changed


def entries(cat: catalog.Catalog) -> list[dict[str, Any]]:
    """One entry per chart and number of ``cat``, with what its last build recorded."""
    out = conf.output_dir()
    found = []
    for generator in cat.generators:
        for declaration in generator.declarations:
            record = outputs.read_record(generator.name, declaration.name)
            paths = outputs.of(generator.name, declaration) + outputs.extra_csvs(
                generator.name, declaration.name, record.data_sets
            )
            if declaration.kind == "chart":
                paths.append(outputs.page(generator.name, declaration))
            entry: dict[str, Any] = {
                "task": f"{generator.name}.{declaration.name}",
                "generator": generator.name,
                "name": declaration.name,
                "kind": declaration.kind,
                "title": declaration.title,
                "models": list(declaration.models),
                "reads": list(record.reads) if record.built_at else None,
                "outputs": [p for p in paths if (out / p).exists()],
                "built_at": record.built_at or None,
            }
            if record.error:
                entry["failed_at"] = record.failed_at
                entry["error"] = record.error.splitlines()[0]
            found.append(entry)
    return found


def write(cat: catalog.Catalog) -> bool:
    """Write ``manifest.json``; return whether its content changed."""
    text = json.dumps({"entries": entries(cat)}, indent=1, sort_keys=True) + "\n"
    return write_if_changed(conf.output_dir() / outputs.manifest(), text)
