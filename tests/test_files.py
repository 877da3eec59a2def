import os

import pytest

from chartbuild import files
from chartbuild.files import write_if_changed


def test_writes_a_new_file(tmp_path):
    path = tmp_path / "a" / "b.json"
    assert write_if_changed(path, "{}") is True
    assert path.read_text() == "{}"


def test_leaves_an_unchanged_file_alone(tmp_path):
    path = tmp_path / "b.json"
    write_if_changed(path, b"same")
    os.utime(path, ns=(1, 1))
    assert write_if_changed(path, "same") is False
    assert path.stat().st_mtime_ns == 1


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "b.json"
    write_if_changed(path, "old")

    def fail(src, dst):
        raise OSError("no space left on device")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError):
        write_if_changed(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]
