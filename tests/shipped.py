"""chartbuild as a user gets it: its sdist and wheel, built from the repository, and a
virtual environment with the wheel installed (not the repository)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from tests.doit import REPO


@dataclass(frozen=True)
class Package:
    sdist: Path
    wheel: Path

    def wheel_names(self) -> set[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return set(archive.namelist())

    def wheel_file(self, suffix: str) -> str:
        with zipfile.ZipFile(self.wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(suffix))
            return archive.read(name).decode()


def once_per_python() -> None:
    """Skip on the PostgreSQL passes: what is shipped does not depend on the test database."""
    if connection.vendor != "sqlite":
        pytest.skip("the package is tested once per Python, on the SQLite pass")


def clean_copy(out: Path) -> Path:
    """The repository's files as a fresh clone has them (no ``*.egg-info`` an editable
    install left, which setuptools would read its file list from), in ``out``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return out


def build(out: Path) -> Package:
    """``python -m build`` of a clean copy of the repository: its sdist and wheel, in ``out``."""
    source = clean_copy(out / "source")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (sdist,) = out.glob("chartbuild-*.tar.gz")
    (wheel,) = out.glob("chartbuild-*.whl")
    return Package(sdist, wheel)


@dataclass(frozen=True)
class Environment:
    """A virtual environment with the wheel installed."""

    path: Path

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)


def environment(package: Package) -> Environment:
    """A virtual environment of this Python's with ``package``'s wheel, and what it needs
    from the package index.

    It lives inside the test environment (``sys.prefix``), so a fresh clone makes it
    afresh; it is made again when the wheel's requirements change, and the wheel itself is
    installed again every time.
    """
    path = Path(sys.prefix) / "wheel-env"
    env = Environment(path)
    requirements = "\n".join(
        line
        for line in package.wheel_file(".dist-info/METADATA").splitlines()
        if line.startswith(("Requires-Dist", "Requires-Python"))
    )
    wanted = hashlib.sha256(requirements.encode()).hexdigest()
    marker = path / "requirements.sha256"
    pip = [env.bin("python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not marker.is_file() or marker.read_text() != wanted:
        shutil.rmtree(path, ignore_errors=True)  # nothing a former wheel needed stays
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(path)], check=True, timeout=300)
        subprocess.run([*pip, str(package.wheel)], check=True, timeout=900)
        marker.write_text(wanted)
    subprocess.run(
        [*pip, "--no-deps", "--force-reinstall", str(package.wheel)], check=True, timeout=300
    )
    return env
