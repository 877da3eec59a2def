"""What the Django site shows of the build outputs, and to whom: the core under the views.

Plain functions of a user and the catalog (no requests, no responses): which generators,
charts and numbers a user may see, where their files are, and the state of a
generator's charts that its live pages poll.

What a build made is read from the output directory and the build's records, or, with
``STORAGES["chartbuild"]``, from the manifest and files published there
(:mod:`chartbuild.publish.storage`): a web process on another host needs neither.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import DatabaseError

from chartbuild import conf, names
from chartbuild.declare import catalog
from chartbuild.declare.registry import Declaration
from chartbuild.publish import freshness, outputs, pages, storage
from chartbuild.publish import manifest as manifest_file
from chartbuild.site import permissions, stored

#: The files of a chart a request may ask for, by extension; a number has its ``json``.
CHART_FILES = ("vl.json", "svg", "png", "csv")
NUMBER_FILES = ("json",)
#: A chart's CSV file of its second, third... inline data set.
EXTRA_CSV = re.compile(r"[2-9]\.csv|[1-9][0-9]+\.csv", re.ASCII)


@dataclass(frozen=True)
class Output:
    """One output file: in the output directory (``path``) or in the storage (``stored``)."""

    name: str
    path: Path | None = None
    stored: str | None = None

    def read(self) -> bytes:
        if self.path is not None:
            return self.path.read_bytes()
        try:
            return stored.content(str(self.stored))
        except OSError:
            raise
        except Exception as exc:  # the storage's own errors (botocore's...)
            raise OSError(f"cannot read {self.stored} from {storage.describe()}: {exc}") from exc


@dataclass(frozen=True)
class Item:
    """A chart or number as the site shows it."""

    generator: catalog.Generator
    declaration: Declaration
    record: outputs.Record
    #: Its files in ``STORAGES["chartbuild"]`` by output path (None: the output directory).
    objects: Mapping[str, str] | None = None

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def kind(self) -> str:
        return self.declaration.kind

    @property
    def title(self) -> str:
        return self.declaration.title

    @property
    def task(self) -> str:
        return names.task_name(self.generator.name, self.declaration.name)

    @property
    def built(self) -> bool:
        return self.file(self.main_extension) is not None

    @property
    def main_extension(self) -> str:
        return "json" if self.kind == "number" else "vl.json"

    def file(self, extension: str) -> Output | None:
        """The output file with ``extension`` if this item has one and it exists."""
        if self.kind == "number":
            allowed = extension in NUMBER_FILES
        elif extension == "csv":
            allowed = self.record.data_sets > 0  # a chart without inline data has no CSV
        elif EXTRA_CSV.fullmatch(extension):
            allowed = int(extension.split(".", 1)[0]) <= self.record.data_sets
        else:
            allowed = extension in CHART_FILES
        if not allowed:
            return None
        name = f"{self.generator.name}/{self.name}.{extension}"
        if self.objects is not None:
            stored = self.objects.get(name)
            return Output(name, stored=stored) if stored else None
        path = conf.output_dir() / name
        return Output(name, path=path) if path.is_file() else None

    def version(self) -> str:
        """Changes whenever the item is built again, or fails to be."""
        found = self.file(self.main_extension)
        seen = ""
        if found is not None and found.path is not None:
            with contextlib.suppress(OSError):
                stat = found.path.stat()
                seen = f"{stat.st_mtime_ns}-{stat.st_size}"
        elif found is not None:
            seen = str(found.stored)  # named by its content
        mark = f"{seen}|{self.record.built_at}|{self.record.failed_at}"
        return hashlib.sha256(mark.encode()).hexdigest()[:16]

    def number(self) -> dict[str, Any] | None:
        """A number's value, label and unit as built (``None`` before its first build)."""
        found = self.file("json")
        if found is None:
            return None
        try:
            data = json.loads(found.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def behind_since(self) -> str | None:
        """When it fell behind, while it is over its freshness limit (else None).

        Read from the database, shared by the requests of one second; None when the
        database cannot say.
        """
        try:
            found = freshness.of(
                self.generator, self.declaration, self.record, freshness.pending(max_age=1.0)
            )
        except DatabaseError:
            return None
        if not found.stale or found.behind_since is None:
            return None
        return found.behind_since.astimezone(dt.UTC).isoformat(timespec="seconds")

    def state(self) -> dict[str, Any]:
        """What a live page knows of this item."""
        found: dict[str, Any] = {
            "version": self.version(),
            "built_at": self.record.built_at or None,
            "stale": bool(self.record.error),
            "behind_since": self.behind_since() if self.record.built_at else None,
        }
        if self.kind == "number":
            number = found["number"] = self.number()
            found["trend"] = pages.trend(number) if number else None
        return found


def generator(name: str) -> catalog.Generator | None:
    """The generator called ``name``, if it exists and can be imported."""
    try:
        found = catalog.cached().generator(name)
    except KeyError:
        return None
    return None if found.error else found


def _built(gen: catalog.Generator, declaration: Declaration, stored: Any) -> Item:
    """``declaration`` with what its last build made (``stored``: the stored entries)."""
    if stored is None:
        return Item(gen, declaration, outputs.read_record(gen.name, declaration.name))
    entry = stored.get(names.task_name(gen.name, declaration.name))
    objects = entry.get("objects") if entry is not None else None
    return Item(gen, declaration, outputs.Record.from_data(entry), objects or {})


def _stored() -> dict[str, dict[str, Any]] | None:
    return stored.entries() if storage.configured() else None


def items(user: Any, gen: catalog.Generator) -> list[Item]:
    """The charts and numbers of ``gen`` that ``user`` may see, numbers first."""
    stored = _stored()
    found = [
        _built(gen, d, stored) for d in gen.declarations if permissions.may_see(user, gen, d.name)
    ]
    return sorted(found, key=lambda item: item.kind != "number")


def every_item() -> list[Item]:
    """Every chart and number of the generators that import, whoever may see them."""
    stored = _stored()
    return [
        _built(gen, d, stored)
        for gen in catalog.cached().generators
        if not gen.error
        for d in gen.declarations
    ]


def item(gen: catalog.Generator, name: str) -> Item | None:
    """Chart or number ``name`` of ``gen``, or ``None`` if it declares none."""
    for declaration in gen.declarations:
        if declaration.name == name:
            return _built(gen, declaration, _stored())
    return None


def may_see(user: Any, entry: Item) -> bool:
    return permissions.may_see(user, entry.generator, entry.name)


def generators(user: Any) -> list[tuple[catalog.Generator, list[Item]]]:
    """The generators with something ``user`` may see, with what they may see of each."""
    found = []
    for gen in catalog.cached().generators:
        if gen.error:
            continue
        visible = items(user, gen)
        if visible:
            found.append((gen, visible))
    return found


def state(visible: list[Item]) -> dict[str, Any]:
    """What a live page polls of the ``visible`` items of its generator: each one's state."""
    return {entry.name: entry.state() for entry in visible}


#: What the manifest tells only staff: how the charts are made, and their errors.
STAFF_ONLY = ("models", "reads", "error", "inputs", "why")


def manifest(user: Any) -> list[dict[str, Any]]:
    """The manifest entries of the charts and numbers ``user`` may see.

    For staff, as the build wrote them; for others without the models, the reads and the
    error message (a failed build shows as ``failed_at``).
    """
    visible = {entry.task for _, found in generators(user) for entry in found}
    stored = _stored()
    if stored is not None:
        listed = [{k: v for k, v in e.items() if k != "objects"} for e in stored.values()]
    else:
        listed = manifest_file.entries(catalog.cached())
    entries = [e for e in listed if e["task"] in visible]
    if not (user.is_active and user.is_staff):
        entries = [{k: v for k, v in e.items() if k not in STAFF_ONLY} for e in entries]
    return entries


def last_build(found: list[Item]) -> str:
    """When the newest of ``found`` was built (ISO 8601, UTC), or ""."""
    return max((entry.record.built_at for entry in found), default="")
