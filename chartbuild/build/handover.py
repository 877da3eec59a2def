"""The build state a builder takes over, so that a takeover rebuilds only what changed.

With builders elected by PostgreSQL (``CHARTBUILD_LEADER = "postgres"``) and the outputs
in ``STORAGES["chartbuild"]``:

- every chart's record, and so its manifest entry, holds a digest of its inputs: the
  stamps of its models (their change generations) and its generator's source, as they
  were when it was built (:func:`inputs`);
- every publication then saves in the database (:class:`~chartbuild.models.BuildState`)
  the export cursor and the stamps of the build that published.

A builder whose own state is not the latest saved one (a standby that now leads, or a
builder another machine's build overtook) adopts it before it builds: it copies from the
storage the outputs and records of every chart whose recorded inputs are the saved
stamps and its current source (and whose last build did not fail), records those charts
as built in doit's state, then writes the saved cursor and stamps. Its build exports what
changed since and rebuilds the other charts: those that read a changed model, those a
partial or interrupted build left behind, those whose source differs.

The saved cursor is registered as an exporter of its own (:func:`consumer`): no builder
deletes a change record it has not settled, so adopting it never skips a change. A
builder that dies between its manifest and its save leaves the previous state: its
successor rebuilds a little more, never less.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chartbuild import conf, names
from chartbuild.build import dblock
from chartbuild.build.hashes import FileHashes
from chartbuild.declare import catalog
from chartbuild.declare.registry import Declaration
from chartbuild.exceptions import ChartbuildError
from chartbuild.export import exporter
from chartbuild.files import write_if_changed
from chartbuild.publish import manifest as manifest_file
from chartbuild.publish import outputs, storage

logger = logging.getLogger(__name__)

#: The consumer row that keeps the saved cursor's change records from being pruned.
CONSUMER = "chartbuild: the saved build state"


def enabled(using: str | None = None) -> bool:
    """Whether builds save their state for a successor (and adopt a newer one)."""
    return storage.configured() and dblock.elects(using or conf.database())


def _marker(state_dir: Path) -> Path:
    """The serial of the saved state this state directory holds (saved or adopted)."""
    return state_dir / "handover"


def _local_serial(state_dir: Path) -> str:
    try:
        return _marker(state_dir).read_text().strip()
    except OSError:
        return ""


def inputs(
    generator: catalog.Generator,
    declaration: Declaration,
    stamps: Mapping[str, str],
    hashes: FileHashes,
) -> str:
    """The digest of a chart's inputs: its models' stamps (``stamps``: by stamp file name)
    and its generator's source (hashed with the build's ``hashes``). Recorded with each
    chart when it is built; compared, with the saved stamps, by a builder that takes over."""
    source = hashes.md5(str(generator.path)) if generator.path is not None else ""
    names = [exporter.stamp_path(Path(), model).name for model in declaration.models]
    text = "\0".join([*(stamps.get(name, "") for name in names), source])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def consumer() -> str:
    """The consumer row of this project's saved state (see :class:`Consumers`)."""
    return f"{CONSUMER} {conf.leader_key()}".strip()[:255]


def save() -> None:
    """Save what the build that just published exported: its cursor and stamps."""
    from django.utils import timezone

    from chartbuild.models import BuildState

    using = conf.database()
    state_dir = conf.state_dir()
    cursor = exporter.ExportCursor.load(exporter.cursor_path(state_dir))
    if cursor is None:
        return  # nothing exported yet: nothing a successor could take over
    stamps = {
        p.name: p.read_text() for p in sorted(exporter.stamp_folder(state_dir).glob("*.stamp"))
    }
    serial = secrets.token_hex(8)
    exporter.Consumers(using, consumer()).register(
        {name: source.watermark for name, source in cursor.sources.items()}
    )
    BuildState.objects.using(using).update_or_create(
        key=conf.leader_key(),
        defaults={
            "serial": serial,
            "data": {"cursor": cursor.dumps(), "stamps": stamps},
            "saved_at": timezone.now(),
            "saved_by": f"{socket.gethostname()}:{state_dir}"[:255],
        },
    )
    write_if_changed(_marker(state_dir), serial + "\n", durable=True)


class HalfAdopted(ChartbuildError):
    """Adopting a saved state failed after it had begun to write this state directory."""


@dataclass(frozen=True)
class Adopted:
    """A saved build state written into this state directory."""

    serial: str
    saved_by: str
    #: The chart and number tasks to record as built (doit's ``reset-dep``).
    built: list[str]

    def done(self) -> None:
        """Note that doit has recorded them: this state directory holds the saved state."""
        write_if_changed(_marker(conf.state_dir()), self.serial + "\n", durable=True)

    def describe(self) -> str:
        return (
            f"took over the build state of {self.saved_by}:"
            f" {len(self.built)} charts and numbers up to date"
        )


def _objects(generator: str, declaration: Declaration, entry: dict[str, Any]) -> dict[str, str]:
    """The stored files of a chart, by output path: only the paths it may have (a stored
    manifest names nothing else of this machine's output directory)."""
    found = entry.get("objects")
    if not isinstance(found, dict):
        return {}
    allowed = {
        *outputs.paths(generator, declaration),
        outputs.page(generator, declaration),
        *outputs.extra_csvs(generator, declaration.name, len(found)),
    }
    return {p: n for p, n in found.items() if p in allowed and isinstance(n, str)}


def adopt(hashes: FileHashes) -> Adopted | None:
    """Write the saved state into this state directory if it does not hold it yet.

    Returns what was adopted (the caller records its charts as built in doit's state,
    then calls :meth:`Adopted.done`), or None if there was nothing to adopt. Should it
    fail half-way, it raises :class:`HalfAdopted`: the caller makes the next export
    start afresh (a full rebuild).
    """
    from chartbuild.models import BuildState

    if not enabled():
        return None
    using = conf.database()
    state_dir = conf.state_dir()
    row = BuildState.objects.using(using).filter(key=conf.leader_key()).first()
    if row is None or row.serial == _local_serial(state_dir):
        return None
    data = row.data
    store = storage.get()
    published = storage.read(store)
    stored = {e.get("task"): e for e in published.get("entries", []) if isinstance(e, dict)}
    stamps = data["stamps"]
    cat = catalog.load()
    built: list[tuple[catalog.Generator, Declaration, dict[str, str]]] = []
    for generator in cat.generators:
        if generator.error:
            continue
        for declaration in generator.declarations:
            entry = stored.get(names.task_name(generator.name, declaration.name)) or {}
            objects = _objects(generator.name, declaration, entry)
            expected = inputs(generator, declaration, stamps, hashes)
            # built from exactly the saved stamps and this source, and not failed since
            if objects and entry.get("inputs") == expected and not entry.get("error"):
                built.append((generator, declaration, objects))
    try:
        out = conf.output_dir()
        for generator, declaration, objects in built:
            for path, name in objects.items():
                with store.open(name, "rb") as handle:
                    write_if_changed(out / path, handle.read())
            entry = stored[names.task_name(generator.name, declaration.name)]
            outputs.write_record(generator.name, declaration.name, outputs.Record.from_data(entry))
        for path, name in (published.get("assets") or {}).items():
            if path in storage.ASSETS and isinstance(name, str):
                with store.open(name, "rb") as handle:
                    write_if_changed(out / path, handle.read())
        folder = exporter.stamp_folder(state_dir)
        for name, text in stamps.items():
            write_if_changed(folder / Path(name).name, text, durable=True)
        write_if_changed(exporter.cursor_path(state_dir), data["cursor"], durable=True)
        manifest_file.mark_due()  # its next manifest is written from every record
    except Exception as exc:
        raise HalfAdopted(f"the build state saved by {row.saved_by}: {exc}") from exc
    tasks = [names.task_name(g.name, d.name) for g, d, _ in built]
    return Adopted(row.serial, row.saved_by, tasks)
