"""manifest.json: whole, and after a build that touched a few generators."""

import errno
import json

import pytest
from django.test import override_settings

from chartbuild import files
from chartbuild.declare.catalog import Catalog, Generator
from chartbuild.declare.registry import Declaration
from chartbuild.publish import manifest, outputs


def declaration(name: str, kind: str = "chart") -> Declaration:
    return Declaration(name=name, kind=kind, title=name.title(), models=("auth.user",))


CATALOG = Catalog(
    (
        Generator(
            "users", "gens.users", None, (declaration("signups"), declaration("total", "number"))
        ),
        Generator("shop", "gens.shop", None, (declaration("revenue"),)),
    )
)


@pytest.fixture
def dirs(tmp_path):
    with override_settings(
        CHARTBUILD_OUTPUT_DIR=str(tmp_path / "charts"), CHARTBUILD_STATE_DIR=str(tmp_path / "state")
    ):
        (tmp_path / "charts").mkdir()
        yield tmp_path


def built(generator: str, name: str, when: str, **record) -> None:
    outputs.write_record(generator, name, outputs.Record(built_at=when, **record))


def written() -> dict[str, dict]:
    path = outputs.manifest()
    from chartbuild import conf

    return {e["task"]: e for e in json.loads((conf.output_dir() / path).read_text())["entries"]}


def test_every_chart_and_number_has_an_entry(dirs):
    built("users", "signups", "2026-01-01T00:00:00+00:00", reads=("auth.user",))
    assert manifest.write(CATALOG)
    entries = written()
    assert set(entries) == {"users.signups", "users.total", "shop.revenue"}
    assert entries["users.signups"]["built_at"] == "2026-01-01T00:00:00+00:00"
    assert entries["users.signups"]["reads"] == ["auth.user"]
    assert entries["shop.revenue"]["built_at"] is None  # never built
    assert not manifest.write(CATALOG)  # nothing changed: the file is left alone


def test_a_build_reads_the_records_of_the_generators_it_touched_only(dirs):
    for generator in CATALOG.generators:
        for d in generator.declarations:
            built(generator.name, d.name, "2026-01-01T00:00:00+00:00")
    manifest.write(CATALOG)
    built("shop", "revenue", "2026-02-02T00:00:00+00:00")
    built("users", "signups", "2026-03-03T00:00:00+00:00")  # as no build would: not read
    manifest.write(CATALOG, touched={"shop"})
    entries = written()
    assert entries["shop.revenue"]["built_at"] == "2026-02-02T00:00:00+00:00"
    assert entries["users.signups"]["built_at"] == "2026-01-01T00:00:00+00:00"
    # what the catalog says is always current, whoever was touched
    renamed = Catalog(
        (
            Generator("users", "gens.users", None, (declaration("signups"),)),
            CATALOG.generators[1],
        )
    )
    manifest.write(renamed, touched=set())
    assert set(written()) == {"users.signups", "shop.revenue"}


def test_without_a_manifest_every_record_is_read(dirs):
    built("users", "signups", "2026-03-03T00:00:00+00:00")
    manifest.write(CATALOG, touched={"shop"})
    assert written()["users.signups"]["built_at"] == "2026-03-03T00:00:00+00:00"


def test_a_manifest_that_cannot_be_written_leaves_the_previous_one(dirs, monkeypatch):
    manifest.write(CATALOG)
    before = (dirs / "charts" / "manifest.json").read_bytes()
    built("users", "signups", "2026-03-03T00:00:00+00:00")
    manifest.mark_due()

    def full(path, content, **options):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "write_temporary", full)
    with pytest.raises(OSError):
        manifest.write(CATALOG, touched={"users"})
    assert (dirs / "charts" / "manifest.json").read_bytes() == before  # whole, as it was
    assert manifest.is_due()
    monkeypatch.undo()
    manifest.write(CATALOG)  # the next build: every record, as the mark asks
    assert written()["users.signups"]["built_at"] == "2026-03-03T00:00:00+00:00"
