"""Outputs published to STORAGES["chartbuild"], served by a web process without local outputs."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.test import Client

from chartbuild.site import stored
from tests.doit import Build, seed

pytestmark = pytest.mark.django_db(transaction=True)

CHART = "/charts/users/signups_per_month"
NUMBER = "/charts/users/total_users.json"


def file_storage(folder: Path) -> dict:
    """``STORAGES["chartbuild"]``: a ``FileSystemStorage`` in ``folder``."""
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(folder)},
    }


def published_build(tmp_path: Path, config: dict) -> Build:
    """A build of copies of the demo's generators that publishes to storage ``config``."""
    seed()
    build = Build(tmp_path)
    build.copy_demo_generators()
    build.env["CHARTBUILD_TEST_STORAGE"] = json.dumps(config)
    build.env["CHARTBUILD_STORAGE_GRACE"] = "0"  # what a manifest drops goes at the next
    first = build.run()
    assert first.returncode == 0, first.stderr
    return build


@pytest.fixture
def web(settings, monkeypatch, tmp_path):
    """This process as a web node of another host: the generators, and no outputs at all."""

    def serve(build: Build, config: dict) -> Client:
        monkeypatch.syspath_prepend(str(build.gens.parent))
        for module in [m for m in sys.modules if m == "gens" or m.startswith("gens.")]:
            monkeypatch.delitem(sys.modules, module)
        settings.CHARTBUILD_OUTPUT_DIR = str(tmp_path / "web" / "charts")
        settings.CHARTBUILD_STATE_DIR = str(tmp_path / "web" / "state")
        settings.CHARTBUILD_GENERATORS = ["gens.users", "gens.shop"]
        settings.STORAGES = {**settings.STORAGES, "chartbuild": config}
        monkeypatch.setattr(stored, "MANIFEST_TTL", 0)
        client = Client()
        client.force_login(User.objects.create_user("boss", password="pw", is_staff=True))
        return client

    return serve


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def total_users(client: Client) -> int:
    response = client.get(NUMBER)
    assert response.status_code == 200
    return json.loads(body(response))["value"]


def test_a_web_node_without_outputs_serves_the_current_charts_from_a_file_storage(tmp_path, web):
    """Done-when 3 (FileSystemStorage in another folder)."""
    folder = tmp_path / "published"
    config = file_storage(folder)
    build = published_build(tmp_path / "builder", config)
    client = web(build, config)

    svg = client.get(f"{CHART}.svg")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert body(svg) == (build.out / "users" / "signups_per_month.svg").read_bytes()
    assert client.get(f"{CHART}.svg", HTTP_IF_NONE_MATCH=svg["ETag"]).status_code == 304
    assert total_users(client) == 3
    for url in ["/charts/", "/charts/users/", f"{CHART}/", "/charts/static/vega.js"]:
        assert client.get(url).status_code == 200, url
    assert "signups_per_month" in client.get("/charts/users/").content.decode()
    entries = client.get("/charts/manifest.json").json()["entries"]
    assert {e["task"] for e in entries} >= {"users.signups_per_month", "users.total_users"}
    assert not any("objects" in e for e in entries)

    (old,) = folder.glob("users/total_users.*.json")
    User.objects.create(username="fourth")
    assert build.run().returncode == 0
    assert total_users(client) == User.objects.count()
    assert (
        body(client.get(f"{CHART}.svg"))
        == (build.out / "users" / "signups_per_month.svg").read_bytes()
    )
    # a file the first manifest named stays for one more publication (a request that read
    # that manifest still finds it), then goes
    assert old.exists() and len(list(folder.glob("users/total_users.*.json"))) == 2
    User.objects.create(username="fifth")
    assert build.run().returncode == 0
    assert total_users(client) == User.objects.count()
    assert not old.exists() and len(list(folder.glob("users/total_users.*.json"))) == 2
    retired = json.loads((folder / "manifest.json").read_text())["retired"]
    assert str(old.relative_to(folder)) not in retired  # deleted, so no longer listed
    assert not (tmp_path / "web" / "charts").exists()  # served without local outputs


def test_a_failed_publication_is_retried_by_the_next_build(tmp_path, web):
    """The storage cannot be written: the build fails naming it; once fixed, the next build
    publishes although nothing changed."""
    blocked = tmp_path / "published"
    blocked.write_text("a file where the storage's folder should be")
    config = file_storage(blocked)
    seed()
    build = Build(tmp_path / "builder")
    build.copy_demo_generators()
    build.env["CHARTBUILD_TEST_STORAGE"] = json.dumps(config)
    failed = build.run()
    assert failed.returncode != 0
    error = failed.task("manifest")["error"]
    assert 'cannot publish the outputs to STORAGES["chartbuild"]' in error
    assert "next build publishes them" in error

    blocked.unlink()
    again = build.run()
    assert again.returncode == 0, again.stderr
    assert not again.charts  # nothing to build again: only published
    client = web(build, config)
    assert total_users(client) == 3


def test_a_build_that_lost_the_build_lock_publishes_nothing(tmp_path, postgres):
    """The server ended the session holding the build lock during the build (another build
    may have begun): the manifest is not published; the next build publishes it."""
    folder = tmp_path / "published"
    config = file_storage(folder)
    User.objects.create(username="ada")
    build = Build(tmp_path / "builder", generators=["tests.generators.ends_build_session"])
    build.env["CHARTBUILD_TEST_STORAGE"] = json.dumps(config)
    marker = tmp_path / "end-the-build-session"
    marker.touch()
    build.env["CHARTBUILD_TEST_END_BUILD_SESSION"] = str(marker)
    lost = build.run()
    assert not marker.exists()  # the session was ended during this build
    assert lost.returncode != 0
    error = lost.task("manifest")["error"]
    assert "lost the build lock of database 'default'" in error
    assert "nothing was published" in error
    assert not (folder / "manifest.json").exists()

    again = build.run()
    assert again.returncode == 0, again.stderr
    published = json.loads((folder / "manifest.json").read_text())
    assert [e["task"] for e in published["entries"]] == [
        "ends_build_session.ends_the_build_session"
    ]


@pytest.fixture
def s3():
    """A local S3-compatible server (moto's), with an empty bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = {
        "bucket_name": "charts",
        "endpoint_url": endpoint,
        "access_key": "testing",
        "secret_key": "testing",
        "region_name": "us-east-1",
    }
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="charts")
    yield {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    server.stop()


def test_a_web_node_without_outputs_serves_the_current_charts_from_s3(tmp_path, web, s3):
    """Done-when 3 (S3): files are served by a redirect to their signed URL."""
    build = published_build(tmp_path / "builder", s3)
    client = web(build, s3)

    response = client.get(f"{CHART}.svg")
    assert response.status_code == 302
    assert "Signature=" in response["Location"] or "X-Amz-Signature=" in response["Location"]
    with urllib.request.urlopen(response["Location"]) as signed:
        assert signed.read() == (build.out / "users" / "signups_per_month.svg").read_bytes()
    assert client.get(f"{CHART}/").status_code == 200  # its data table, read from S3

    User.objects.create(username="fourth")
    assert build.run().returncode == 0
    with urllib.request.urlopen(client.get(NUMBER)["Location"]) as signed:
        assert json.loads(signed.read())["value"] == User.objects.count()


def test_a_storage_that_cannot_be_loaded_is_a_check_error(settings):
    settings.STORAGES = {**settings.STORAGES, "chartbuild": {"BACKEND": "no.such.Storage"}}
    errors = [m for m in run_checks() if m.id == "chartbuild.E020"]
    assert errors and 'STORAGES["chartbuild"]' in errors[0].msg
    settings.CHARTBUILD_STORAGE_GRACE = -1
    assert [m for m in run_checks() if m.id == "chartbuild.E021"]


def test_an_s3_storage_that_keeps_files_is_a_check_error(settings, s3):
    s3["OPTIONS"]["file_overwrite"] = False
    settings.STORAGES = {**settings.STORAGES, "chartbuild": s3}
    errors = [m for m in run_checks() if m.id == "chartbuild.E020"]
    assert errors and "file_overwrite is False" in errors[0].msg


def test_with_an_elected_builder_a_web_node_serves_a_publication_at_once(
    tmp_path, web, postgres, monkeypatch
):
    """The saved build state's serial says a newer manifest is there: no second of cache."""
    folder = tmp_path / "published"
    config = file_storage(folder)
    build = published_build(tmp_path / "builder", config)
    client = web(build, config)
    monkeypatch.setattr(stored, "MANIFEST_TTL", 60)  # only the serial can explain a re-read
    assert total_users(client) == 3
    User.objects.create(username="fourth")
    assert build.run(process=True).returncode == 0  # another host publishes, and its serial
    assert total_users(client) == User.objects.count() == 5  # three, the web's boss, one more
