from pathlib import Path

from chartbuild import conf


def test_defaults(settings):
    for name in ("CHARTBUILD_OUTPUT_DIR", "CHARTBUILD_STATE_DIR", "CHARTBUILD_GENERATORS"):
        delattr(settings, name)
    assert conf.output_dir() == Path(settings.BASE_DIR) / "charts"
    assert conf.state_dir() == Path(settings.BASE_DIR) / ".chartbuild"
    assert conf.generators() == []
    assert conf.autodiscover() is True
    assert conf.lock_timeout() == 600 or conf.lock_timeout() == settings.CHARTBUILD_LOCK_TIMEOUT
    assert conf.hook_mode() == "signal"
    assert conf.database() == "default"


def test_relative_paths_are_taken_from_base_dir(settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings.BASE_DIR = "/srv/site"
    settings.CHARTBUILD_OUTPUT_DIR = "public/charts"
    assert conf.output_dir() == Path("/srv/site/public/charts")


def test_without_base_dir_relative_paths_are_taken_from_the_working_directory(
    settings, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    del settings.BASE_DIR
    settings.CHARTBUILD_STATE_DIR = "state"
    assert conf.state_dir() == tmp_path / "state"
