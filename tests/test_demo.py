"""scripts/demo from a fresh database: the README's first command."""

import json
import os
import subprocess

import pytest
from django.db import connection

from tests.doit import DOIT, REPO


def test_the_demo_builds_every_output_and_a_second_build_does_nothing(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("the demo runs on its embedded SQLite database (the SQLite pass runs it)")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "CHARTBUILD_OUTPUT_DIR": str(tmp_path / "charts"),
        "CHARTBUILD_STATE_DIR": str(tmp_path / "state"),
        "DJANGO_SETTINGS_MODULE": "demo.settings",
    }
    demo = subprocess.run(
        [str(REPO / "scripts" / "demo")], env=env, capture_output=True, text=True, timeout=600
    )
    assert demo.returncode == 0, demo.stderr
    out = tmp_path / "charts"
    assert f"{out}/users/index.html" in demo.stdout
    assert f"{out}/shop/index.html" in demo.stdout
    assert "manage.py runserver" in demo.stdout
    assert "http://127.0.0.1:8000/charts/" in demo.stdout
    assert "staff    password staff-demo" in demo.stdout
    assert "shopper  password shopper-demo" in demo.stdout

    entries = json.loads((out / "manifest.json").read_text())["entries"]
    assert sum(e["kind"] == "chart" for e in entries) >= 6
    assert sum(e["kind"] == "number" for e in entries) >= 3
    assert {e["generator"] for e in entries} == {"users", "shop"}
    for entry in entries:
        assert len(entry["outputs"]) == (5 if entry["kind"] == "chart" else 1)
    marks = {
        json.loads((out / e["outputs"][0]).read_text()).get("mark", {}).get("type")
        for e in entries
        if e["kind"] == "chart"
    }
    assert len(marks) >= 4

    total = json.loads((out / "users" / "total_users.json").read_text())
    assert total["value"] >= 2000

    again = subprocess.run(
        [DOIT, "--reporter", "json"], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert again.returncode == 0
    ran = {t["name"] for t in json.loads(again.stdout)["tasks"] if t["started"] is not None}
    assert ran <= {"export", "gen", "manifest"}  # gen: the group task, it has no action
