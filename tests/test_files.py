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


@pytest.mark.django_db(transaction=True)
def test_a_build_makes_the_files_it_wrote_durable_not_the_whole_machine(
    settings, tmp_path, monkeypatch
):
    from django.contrib.auth.models import User

    from chartbuild.build import runner

    settings.CHARTBUILD_OUTPUT_DIR = tmp_path / "charts"
    settings.CHARTBUILD_STATE_DIR = tmp_path / "state"
    settings.CHARTBUILD_PARALLEL = 1
    User.objects.create(username="ada")

    def everything():
        raise AssertionError("os.sync() flushes every file system of the machine")

    synced = []
    fsync = os.fsync

    def one(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return fsync(fd)

    files.flush()  # what this process wrote before the test
    monkeypatch.setattr(files.os, "sync", everything)
    monkeypatch.setattr(files.os, "fsync", one)
    assert runner.build().ok
    chart = tmp_path / "charts" / "users" / "signups_per_month.svg"
    assert str(chart) in synced and str(chart.parent) in synced
    assert all(p.startswith(str(tmp_path)) for p in synced)
