"""Where every output of a build lives, relative to the output directory."""

from __future__ import annotations

from pathlib import Path

from chartbuild.registry import Declaration

STATIC = "static"
#: Files of chartbuild's own ``static/chartbuild`` copied into the ``static`` folder.
PACKAGE_ASSETS = ("chartbuild.js", "chartbuild.css")
#: Files of the ``static`` folder written once per output directory.
ASSETS = ("vega.js", *PACKAGE_ASSETS)


def of(generator: str, declaration: Declaration) -> list[str]:
    """Output paths of one chart or number, relative to the output directory."""
    base = f"{generator}/{declaration.name}"
    if declaration.kind == "number":
        return [f"{base}.json"]
    return [f"{base}.vl.json", f"{base}.svg", f"{base}.html"]


def dashboard(generator: str) -> str:
    return f"{generator}/index.html"


def manifest() -> str:
    return "manifest.json"


def assets() -> list[str]:
    return [f"{STATIC}/{name}" for name in ASSETS]


def record(state_dir: Path, generator: str, name: str) -> Path:
    """When a chart or number was last built (kept with the build state)."""
    return state_dir / "records" / generator / f"{name}.json"
