import sys

import pytest

from chartbuild.declare import catalog
from chartbuild.declare.registry import Declaration


@pytest.fixture(autouse=True)
def state(settings, tmp_path):
    settings.CHARTBUILD_STATE_DIR = tmp_path / "state"
    settings.CHARTBUILD_GENERATORS = ["tests.generators.good"]


def test_generators_come_from_the_setting_and_from_app_charts_modules(settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.chartapp"]
    found = catalog.load()
    assert [(g.name, g.module) for g in found.generators] == [
        ("chartapp", "tests.chartapp.charts"),
        ("good", "tests.generators.good"),
    ]
    assert found.generator("chartapp").get("people") == Declaration(
        name="people",
        kind="number",
        title="People",
        models=("auth.user",),
        label="People",
        unit="people",
    )


def test_autodiscovery_can_be_turned_off(settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.chartapp"]
    settings.CHARTBUILD_AUTODISCOVER = False
    assert [g.name for g in catalog.load().generators] == ["good"]


def test_declarations_keep_source_order_and_titles():
    good = catalog.load().generator("good")
    assert [(d.name, d.kind, d.title) for d in good.declarations] == [
        ("users_chart", "chart", "A chart of users"),
        ("user_count", "number", "Users"),
    ]


def test_a_fresh_cache_imports_no_generator():
    catalog.load()
    sys.modules.pop("tests.generators.good")
    again = catalog.load()
    assert "tests.generators.good" not in sys.modules
    assert again.generator("good").get("user_count").label == "Users"


def test_an_edited_generator_is_read_again(settings, tmp_path, monkeypatch):
    package = tmp_path / "edited"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = package / "gen.py"
    source.write_text(
        "from chartbuild import number\n\n@number(models=['auth.User'])\ndef one():\n    return 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.CHARTBUILD_GENERATORS = ["edited.gen"]
    assert [d.name for d in catalog.load().generator("gen").declarations] == ["one"]
    source.write_text(
        source.read_text() + "\n@number(models=['auth.User'])\ndef two():\n    return 2\n"
    )
    assert [d.name for d in catalog.load().generator("gen").declarations] == ["one", "two"]
    assert catalog.function(catalog.load().generator("gen"), "two")() == 2


def test_an_unknown_generator_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown generator 'nope'; known generators: good"):
        catalog.load().generator("nope")


def test_a_function_removed_from_a_generator_is_gone_after_the_edit(
    settings, tmp_path, monkeypatch
):
    package = tmp_path / "renamed"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = package / "gen.py"
    body = (
        "from chartbuild import number\n\n@number(models=['auth.User'])\ndef {}():\n    return 1\n"
    )
    source.write_text(body.format("old_name"))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.CHARTBUILD_GENERATORS = ["renamed.gen"]
    catalog.function(catalog.load().generator("gen"), "old_name")
    source.write_text(body.format("new_name") + "\n")
    assert [d.name for d in catalog.load().generator("gen").declarations] == ["new_name"]
