"""Where every output of a build lives, how a chart's outputs are replaced, and its record.

Paths are relative to the output directory, except the records, which are build state:
one small JSON file per chart or number saying when it was last built, what its queries
read, and whether its last build failed.

:func:`publish` replaces the outputs of one chart as a set: every new file is written
beside its target first, and only when all of them are written do they replace their
targets. A failure while writing (a full disk, a read-only or vanished directory) leaves
every old output in place and raises :class:`~chartbuild.exceptions.OutputError`, which
names the file and what to do.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chartbuild import conf
from chartbuild.declare.registry import Declaration
from chartbuild.exceptions import OutputError
from chartbuild.files import discard, write_if_changed, write_temporary
from chartbuild.names import STATIC

#: Files of chartbuild's own ``static/chartbuild`` copied into the ``static`` folder.
PACKAGE_ASSETS = ("chartbuild.js", "chartbuild.css")
#: Files of the ``static`` folder written once per output directory.
ASSETS = ("vega.js", *PACKAGE_ASSETS)


def paths(generator: str, declaration: Declaration) -> list[str]:
    """Output paths of one chart or number, relative to the output directory.

    Its first: the spec (chart) or the value (number). A chart's page is not among them
    (see :func:`page`).
    """
    base = f"{generator}/{declaration.name}"
    if declaration.kind == "number":
        return [f"{base}.json"]
    return [f"{base}.vl.json", f"{base}.svg", f"{base}.png", f"{base}.csv"]


def page(generator: str, declaration: Declaration) -> str:
    """A chart's static page (written with its generator's pages: :mod:`.pages`)."""
    return f"{generator}/{declaration.name}.html"


def extra_csvs(generator: str, name: str, count: int) -> list[str]:
    """Paths of a chart's CSV files beyond the first (one per inline data set)."""
    return [f"{generator}/{name}.{n}.csv" for n in range(2, count + 1)]


def data_sets(spec: Any) -> list[list[dict[str, Any]]]:
    """The inline data sets of a Vega-Lite spec: its ``datasets``, then each ``data.values``."""
    found: list[list[Any]] = []
    if isinstance(spec, dict) and isinstance(spec.get("datasets"), dict):
        found += [rows for rows in spec["datasets"].values() if isinstance(rows, list)]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and isinstance(data.get("values"), list):
                found.append(data["values"])
            for key, value in node.items():
                if key not in ("data", "datasets"):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return [[row if isinstance(row, dict) else {"data": row} for row in rows] for rows in found]


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The fields of ``rows``, in the order they first appear."""
    return list(dict.fromkeys(key for row in rows for key in row))


def csv_text(rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV (RFC 4180, a header line); nested values as JSON.

    Text that a spreadsheet would take for a formula (``=``, ``+``, ``-``, ``@``...) is
    written with a leading ``'``, in the header as in the data.
    """
    fields = columns(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_cell(field) for field in fields])
    for row in rows:
        writer.writerow([_cell(row.get(field)) for field in fields])
    return buffer.getvalue()


#: A text cell starting with one of these is a formula to a spreadsheet: it gets a "'".
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value  # never run as a formula when the file is opened
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def dashboard(generator: str) -> str:
    return f"{generator}/index.html"


def manifest() -> str:
    return "manifest.json"


def assets() -> list[str]:
    return [f"{STATIC}/{name}" for name in ASSETS]


def replace_set(files: dict[Path, str | bytes]) -> list[Path]:
    """Replace ``files`` as a set; those whose content is unchanged are left alone.

    Returns the paths that were replaced. Raises :class:`OutputError` (with every target
    unchanged) if any of them cannot be written.
    """
    pending: list[tuple[Path, str]] = []
    try:
        for path, data in files.items():
            content = data.encode() if isinstance(data, str) else data
            try:
                if path.read_bytes() == content:
                    continue
            except OSError:
                pass
            pending.append((path, write_temporary(path, content)))
        for path, temporary in pending:
            os.replace(temporary, path)
    except OSError as exc:
        for _, temporary in pending:
            discard(temporary)
        raise output_error(exc) from exc
    return [path for path, _ in pending]


def output_error(exc: OSError) -> OutputError:
    """A message for a failed write that names the file, its folder and what to do."""
    named = exc.filename2 or exc.filename  # a rename names its target second
    if named:
        path = Path(named)
        where, folder = str(path), f"the folder {path.parent}"
    else:
        where, folder = "the output directory", "it"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = f"the disk that holds {folder} is full; free some space there"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        what = f"{folder} is read-only or not writable by this user; fix its permissions"
    elif exc.errno == errno.ENOENT:
        what = f"{folder} vanished; check CHARTBUILD_OUTPUT_DIR"
    else:
        what = exc.strerror or str(exc)
    return OutputError(
        f"cannot write {where}: {what}. The previous outputs are unchanged; "
        "the next build writes them once this is fixed."
    )


@dataclass(frozen=True)
class Record:
    """What the last build of one chart or number did."""

    built_at: str = ""
    reads: tuple[str, ...] = ()
    error: str = ""
    failed_at: str = ""
    #: A chart's number of CSV files (one per inline data set).
    data_sets: int = 0
    #: A digest of what it was built from: its models' stamps, its generator's source.
    inputs: str = ""
    #: When its builds started failing (its outputs have been the last good ones since).
    failing_since: str = ""
    #: How long its last good build took to make and write its outputs, in seconds.
    seconds: float = 0.0
    #: What its last good build was made from, and why it ran (:mod:`chartbuild.build.why`).
    basis: dict[str, Any] | None = None
    why: tuple[dict[str, Any], ...] = ()

    def as_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v}
        data["reads"] = list(self.reads)
        return json.dumps(data, sort_keys=True) + "\n"

    @classmethod
    def from_data(cls, data: Any) -> Record:
        """A record as a record file or a manifest entry says it (a manifest entry lists
        its ``outputs``, whose CSV files are its data sets); empty if it says nothing."""
        if not isinstance(data, dict):
            return cls()
        try:
            data_sets = int(data.get("data_sets") or 0)
        except (TypeError, ValueError):
            data_sets = 0
        if "outputs" in data:
            data_sets = sum(1 for p in data.get("outputs") or () if str(p).endswith(".csv"))
        reads = data.get("reads") or ()
        return cls(
            built_at=str(data.get("built_at") or ""),
            reads=tuple(reads) if isinstance(reads, list | tuple) else (),
            error=str(data.get("error") or ""),
            failed_at=str(data.get("failed_at") or ""),
            data_sets=data_sets,
            inputs=str(data.get("inputs") or ""),
            failing_since=str(data.get("failing_since") or ""),
            seconds=_seconds(data.get("seconds")),
            basis=data["basis"] if isinstance(data.get("basis"), dict) else None,
            why=tuple(w for w in data.get("why") or () if isinstance(w, dict)),
        )


def _seconds(value: Any) -> float:
    try:
        return max(0.0, float(value or 0))
    except (TypeError, ValueError):
        return 0.0


def record_path(generator: str, name: str, state_dir: Path | None = None) -> Path:
    return (state_dir or conf.state_dir()) / "records" / generator / f"{name}.json"


def read_record(generator: str, name: str, state_dir: Path | None = None) -> Record:
    """The record of a chart or number (empty if it was never built)."""
    try:
        return Record.from_data(json.loads(record_path(generator, name, state_dir).read_text()))
    except (OSError, ValueError):
        return Record()


def write_record(generator: str, name: str, record: Record, state_dir: Path | None = None) -> None:
    write_if_changed(record_path(generator, name, state_dir), record.as_json())
