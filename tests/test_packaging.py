"""What is shipped: the sdist and the wheel hold every file of the package, and nothing else."""

from __future__ import annotations

import subprocess
import tarfile

import pytest

from tests.doit import REPO
from tests.shipped import Package, build, once_per_python


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Package:
    once_per_python()
    return build(tmp_path_factory.mktemp("dist"))


def package_files() -> set[str]:
    """Every file of the repository's ``chartbuild`` package that git knows of."""
    listed = subprocess.run(
        ["git", "ls-files", "chartbuild"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed, "git lists no file of chartbuild/"
    return set(listed)


def test_the_wheel_holds_every_file_of_the_package(package):
    names = package.wheel_names()
    missing = package_files() - names
    assert not missing, f"the wheel lacks {sorted(missing)}"
    for kind in ("templates/chartbuild/site/", "static/chartbuild/", "migrations/"):
        assert any(kind in name for name in names), kind
    assert not any(n.startswith(("tests/", "demo/", "generators/", "docs/")) for n in names)
    entry_points = package.wheel_file("entry_points.txt")
    assert "auto = chartbuild.live.auto:Auto" in entry_points
    assert "chartbuild = chartbuild.build.doitdb:DoitDB" in entry_points
    metadata = package.wheel_file(".dist-info/METADATA")
    assert "Requires-Dist: Django<7,>=5.2" in metadata
    assert "License-Expression: MIT" in metadata


def test_the_sdist_holds_every_file_of_the_package_and_its_licence(package):
    with tarfile.open(package.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    missing = package_files() - names
    assert not missing, f"the sdist lacks {sorted(missing)}"
    assert {"README.md", "LICENSE", "pyproject.toml"} <= names
