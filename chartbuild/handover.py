"""The build state a builder takes over, so that a takeover rebuilds only what changed.

With builders elected by PostgreSQL (``CHARTBUILD_LEADER = "postgres"``) and the outputs
in ``STORAGES["chartbuild"]``, every publication also saves in the database
(:class:`~chartbuild.models.BuildState`) what the published build was made from:

- the export cursor, which holds every model's change generation, and the stamps;
- each generator's source digest, and the charts whose last build failed.

A builder whose own state is not the latest saved one (a standby that now leads, or a
builder another machine's build overtook) adopts it before it builds: it writes that
cursor and those stamps into its state directory, copies the published outputs and
their records from the storage, and records in doit's state, as built, every chart whose
inputs are still the saved ones (same source, no failure). Its build then exports what
changed since and rebuilds only the charts that read it.

The saved cursor is registered as an exporter of its own (:data:`CONSUMER`): no builder
deletes a change record it has not settled, so adopting it never skips a change. A
builder that dies between its manifest and its save leaves the previous state: its
successor rebuilds a little more, never less.
"""

from __future__ import annotations

import logging
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connections

from chartbuild import catalog, conf, exporter, outputs, storage
from chartbuild.exceptions import ChartbuildError
from chartbuild.files import write_if_changed

logger = logging.getLogger(__name__)

#: The consumer row that keeps the saved cursor's change records from being pruned.
CONSUMER = "chartbuild: the saved build state"


def enabled(using: str | None = None) -> bool:
    """Whether builds save their state for a successor (and adopt a newer one)."""
    using = using or conf.database()
    return (
        storage.configured()
        and conf.leader(using) == "postgres"
        and connections[using].vendor == "postgresql"
    )


def _marker(state_dir: Path) -> Path:
    """The serial of the saved state this state directory holds (saved or adopted)."""
    return state_dir / "handover"


def _local_serial(state_dir: Path) -> str:
    try:
        return _marker(state_dir).read_text().strip()
    except OSError:
        return ""


def _sources(cat: catalog.Catalog) -> dict[str, str]:
    from chartbuild.tasks import file_md5

    return {
        g.name: file_md5(str(g.path)) for g in cat.generators if g.path is not None and not g.error
    }


def save(published: dict[str, Any]) -> None:
    """Save what the build just published was made from (after its manifest)."""
    from django.utils import timezone

    from chartbuild.models import BuildState

    using = conf.database()
    state_dir = conf.state_dir()
    cursor_text = exporter.cursor_path(state_dir).read_text()
    cursor = exporter.Cursor.load(exporter.cursor_path(state_dir))
    if cursor is None:
        return  # nothing exported yet: nothing a successor could take over
    stamps = {
        p.name: p.read_text() for p in sorted(exporter.stamp_folder(state_dir).glob("*.stamp"))
    }
    failed = sorted(
        e["task"] for e in published.get("entries", []) if isinstance(e, dict) and e.get("error")
    )
    serial = secrets.token_hex(8)
    data = {
        "cursor": cursor_text,
        "stamps": stamps,
        "sources": _sources(catalog.cached()),
        "failed": failed,
    }
    exporter.Consumers(using, CONSUMER).register(
        {name: source.watermark for name, source in cursor.sources.items()}
    )
    BuildState.objects.using(using).update_or_create(
        key=conf.leader_key(),
        defaults={
            "serial": serial,
            "data": data,
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


def adopt() -> Adopted | None:
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
    stored = {e["task"]: e for e in published.get("entries", []) if isinstance(e, dict)}
    try:
        out = conf.output_dir()
        for entry in stored.values():
            for path, name in (entry.get("objects") or {}).items():
                with store.open(name, "rb") as handle:
                    write_if_changed(out / path, handle.read())
            outputs.write_record(entry["generator"], entry["name"], storage.record(entry))
        for path, name in (published.get("assets") or {}).items():
            with store.open(name, "rb") as handle:
                write_if_changed(out / path, handle.read())
        folder = exporter.stamp_folder(state_dir)
        for name, text in data["stamps"].items():
            write_if_changed(folder / Path(name).name, text, durable=True)
        write_if_changed(exporter.cursor_path(state_dir), data["cursor"], durable=True)
    except Exception as exc:
        raise HalfAdopted(f"the build state saved by {row.saved_by}: {exc}") from exc
    cat = catalog.load()
    sources = _sources(cat)
    failed = set(data.get("failed") or ())
    built = []
    for generator in cat.generators:
        if generator.error or sources.get(generator.name) != data["sources"].get(generator.name):
            continue  # its source differs from the one the outputs were made of
        for declaration in generator.declarations:
            task = f"{generator.name}.{declaration.name}"
            found = stored.get(task) or {}
            if task not in failed and found.get("built_at") and found.get("objects"):
                built.append(task)
    return Adopted(row.serial, row.saved_by, built)
