"""A chart's outputs are replaced as a set; a write that fails says what and where."""

import errno
import io
import json
import os

import pytest
from django.contrib.auth.models import User

from chartbuild import files
from chartbuild.build import runner
from chartbuild.exceptions import OutputError
from chartbuild.publish import outputs


def failing_on(monkeypatch, name: str, code: int = errno.ENOSPC):
    """Make writing the file called ``name`` fail as a full disk does: the kernel's
    ``write()`` fails, and the error names no file."""
    real = os.fdopen

    class Full(io.BufferedWriter):
        def write(self, data):
            raise OSError(code, os.strerror(code))

    def fdopen(fd, mode="r", *args, **kwargs):
        temporary = files.TEMPORARY.match(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        if "w" in mode and temporary and temporary["target"] == name:
            return Full(io.FileIO(fd, "w"))
        return real(fd, mode, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)


def test_a_set_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    old = {tmp_path / name: f"old {name}" for name in ("a.vl.json", "a.svg", "a.html")}
    outputs.replace_set(old)
    failing_on(monkeypatch, "a.html")
    with pytest.raises(OutputError) as caught:
        outputs.replace_set({path: f"new {path.name}" for path in old})
    assert {p: p.read_text() for p in old} == {p: f"old {p.name}" for p in old}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "a.svg", "a.vl.json"]
    message = str(caught.value)
    assert (
        f"cannot write {tmp_path / 'a.html'}: the disk that holds the folder {tmp_path}" in message
    )
    assert "is full" in message


def test_unchanged_files_are_left_alone(tmp_path):
    path = tmp_path / "a.svg"
    assert outputs.replace_set({path: "<svg/>"}) == [path]
    mtime = path.stat().st_mtime_ns
    assert outputs.replace_set({path: "<svg/>"}) == []
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "the disk that holds the folder /srv/charts is full"),
        (errno.EROFS, "the folder /srv/charts is read-only or not writable"),
        (errno.ENOENT, "the folder /srv/charts vanished"),
    ],
)
def test_each_failure_says_what_to_do(code, words):
    message = str(outputs.output_error(OSError(code, "whatever", "/srv/charts/a.svg")))
    assert "/srv/charts/a.svg" in message and words in message
    assert "previous outputs are unchanged" in message


@pytest.mark.django_db(transaction=True)
def test_a_full_disk_fails_the_build_with_a_message_and_the_next_build_repairs(
    settings, tmp_path, monkeypatch
):
    settings.CHARTBUILD_OUTPUT_DIR = tmp_path / "charts"
    settings.CHARTBUILD_STATE_DIR = tmp_path / "state"
    settings.CHARTBUILD_PARALLEL = 1
    User.objects.create(username="ada")
    assert runner.build().ok
    chart = tmp_path / "charts" / "users" / "signups_per_month"
    before = {p: p.read_bytes() for p in chart.parent.glob("signups_per_month.*")}
    User.objects.create(username="bob")
    failing_on(monkeypatch, "signups_per_month.png")
    result = runner.build()
    assert not result.ok
    failure = result.failures["users.signups_per_month"]
    png = tmp_path / "charts" / "users" / "signups_per_month.png"
    assert f"cannot write {png}: the disk that holds the folder {png.parent} is full" in failure
    assert "Traceback" not in failure
    assert {p: p.read_bytes() for p in before} == before  # the old set, whole
    total = json.loads((tmp_path / "charts" / "users" / "total_users.json").read_text())
    assert total["value"] == 2  # the other charts went on
    monkeypatch.undo()
    settings.CHARTBUILD_OUTPUT_DIR = tmp_path / "charts"
    settings.CHARTBUILD_STATE_DIR = tmp_path / "state"
    repaired = runner.build()
    assert repaired.ok and "users.signups_per_month" in repaired.charts
    assert chart.with_suffix(".vl.json").read_bytes() != before[chart.with_suffix(".vl.json")]


@pytest.mark.django_db(transaction=True)
def test_the_csv_holds_the_spec_s_data_and_the_png_has_the_chart_s_size(build):
    import csv
    import re
    import struct

    for name in ("revenue_per_month", "orders_by_status", "top_products"):
        spec = json.loads((build.out / "shop" / f"{name}.vl.json").read_text())
        (data,) = outputs.data_sets(spec)
        assert data
        with (build.out / "shop" / f"{name}.csv").open(newline="") as stream:
            rows = list(csv.DictReader(stream))
        as_text = {True: "true", False: "false"}  # as JSON writes them
        assert rows == [
            {
                key: as_text.get(value, str(value)) if isinstance(value, bool) else str(value)
                for key, value in row.items()
            }
            for row in data
        ]

        png = (build.out / "shop" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (build.out / "shop" / f"{name}.svg").read_text()
        width, height = (
            float(re.search(rf'<svg[^>]* {attr}="([\d.]+)"', svg).group(1))
            for attr in ("width", "height")
        )
        assert struct.unpack(">II", png[16:24]) == (round(width), round(height))


def test_one_csv_per_inline_data_set():
    spec = {
        "datasets": {"data-1": [{"a": 1, "b": "x,y"}]},
        "layer": [
            {"data": {"values": [{"c": {"n": 1}}, {"c": None, "d": True}]}},
            {"data": {"url": "elsewhere.csv"}},
        ],
    }
    first, second = outputs.data_sets(spec)
    assert outputs.csv_text(first) == 'a,b\r\n1,"x,y"\r\n'
    assert outputs.csv_text(second) == 'c,d\r\n"{""n"": 1}",\r\n,true\r\n'


@pytest.mark.django_db(transaction=True)
def test_a_csv_per_data_set_and_none_left_over(tmp_path):
    from tests.doit import Build

    User.objects.create(username="one")
    build = Build(tmp_path, generators=["tests.generators.layers"])
    first = build.run()
    assert first.returncode == 0, [(t["name"], t["error"]) for t in first.tasks]
    folder = build.out / "layers"
    assert (folder / "two_layers.csv").read_bytes() == b"users\r\n1\r\n"
    assert (folder / "two_layers.2.csv").read_bytes() == b"goal\r\n10\r\n20\r\n"
    (entry,) = build.manifest()
    assert "layers/two_layers.2.csv" in entry["outputs"]
    assert build.run("clean", json_report=False).returncode == 0
    assert not (folder / "two_layers.2.csv").exists()  # not a target, still cleaned
    assert build.run().returncode == 0
    assert (folder / "two_layers.2.csv").exists()

    User.objects.bulk_create([User(username=f"u{i}") for i in range(5)])
    assert build.run().returncode == 0
    assert (folder / "two_layers.csv").read_bytes() == b"users\r\n6\r\n"
    assert not (folder / "two_layers.2.csv").exists()
    (entry,) = build.manifest()
    assert "layers/two_layers.2.csv" not in entry["outputs"]


def test_text_a_spreadsheet_would_run_is_quoted():
    rows = [{"name": "=HYPERLINK(1)", "n": -3}, {"name": "@x", "n": 2.5}, {"name": "ok", "n": 1}]
    assert outputs.csv_text(rows) == "name,n\r\n'=HYPERLINK(1),-3\r\n'@x,2.5\r\nok,1\r\n"


def test_a_header_a_spreadsheet_would_run_is_quoted_too():
    rows = [{"=HYPERLINK(1)": 1, "@sum": 2, "n": 3}]
    assert outputs.csv_text(rows) == "'=HYPERLINK(1),'@sum,n\r\n1,2,3\r\n"
