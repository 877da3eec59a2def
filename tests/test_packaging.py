"""What `pip install` of a clone installs: the package with its data and entry points."""

import subprocess
import sys
import zipfile

from tests.doit import REPO


def test_a_wheel_of_the_clone_holds_everything_chartbuild_needs(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("chartbuild-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(
            archive.read(n).decode() for n in names if n.endswith("entry_points.txt")
        )
        metadata = next(archive.read(n).decode() for n in names if n.endswith("/METADATA"))
    for needed in (
        "chartbuild/migrations/0001_initial.py",
        "chartbuild/templates/chartbuild/dashboard.html",
        "chartbuild/static/chartbuild/chartbuild.js",
        "chartbuild/management/commands/chartbuild.py",
        "chartbuild/py.typed",
    ):
        assert needed in names
    assert not any(n.startswith(("tests/", "demo/", "generators/")) for n in names)
    assert "auto = chartbuild.auto:Auto" in entry_points
    assert "chartbuild = chartbuild.doitdb:DoitDB" in entry_points
    assert "Requires-Dist: Django<7,>=5.2" in metadata
