"""A new project, as a user sets it up: the wheel installed in a virtual environment of its
own, ``django-admin startproject``, then the README's "Using it in your project" with the
README's own code blocks. An edit of the README that breaks a step fails here.

The project is ``startproject``'s, on its SQLite database, with ``TIME_ZONE`` set far from
UTC (the example chart must keep every month in any time zone). Everything chartbuild does
runs in the wheel's environment: ``manage.py``, ``doit``, and the checks of the site
through Django's test client (a script run by that environment's Python).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.doit import REPO
from tests.shipped import Environment, build, environment, once_per_python

#: The README's steps (by their bold name) whose Python block makes or extends a file.
STEP_FILES = {
    "Settings": ("mysite/settings.py", "append"),
    "A generator": ("shop/charts.py", "write"),
    "Build": ("dodo.py", "write"),
    "Show them": ("mysite/urls.py", "append"),
}

MODEL = """
from django.db import models
from django.utils import timezone


class Order(models.Model):
    created_at = models.DateTimeField(default=timezone.now)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
"""

#: Orders of four months (UTC noon, mid-month: the same month in any time zone).
ORDERS = [
    ("2026-02-14", "10.50"),
    ("2026-03-14", "20.00"),
    ("2026-04-14", "30.25"),
    ("2026-05-14", "40.00"),
]

#: Checks the site through Django's test client, in the project's own environment.
SITE_CHECK = """
import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()

from django.contrib.auth.models import AnonymousUser, User
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.test.utils import setup_test_environment

setup_test_environment()
URLS = [
    "/charts/", "/charts/shop/", "/charts/shop/revenue_per_month/",
    "/charts/shop/orders_count/", "/charts/shop/revenue_per_month.vl.json",
    "/charts/shop/revenue_per_month.svg", "/charts/shop/revenue_per_month.png",
    "/charts/shop/revenue_per_month.csv", "/charts/shop/orders_count.json",
    "/charts/shop/state.json", "/charts/manifest.json",
]
found = {}
admin = Client()
admin.force_login(User.objects.get(username="admin"))
for url in URLS:
    response = admin.get(url)
    found[url] = [response.status_code, response.get("Content-Type", "")]
anonymous = Client()
redirect = anonymous.get("/charts/")
login = anonymous.get(redirect.get("Location", "/nowhere/"))
found["anonymous"] = [redirect.status_code, redirect.get("Location", "")]
found["login page"] = [login.status_code, login.content.decode()]
page = Template(
    '{% load chartbuild %}{% chartbuild_assets %}{% chart "shop.revenue_per_month" %}'
    '{% number "shop.orders_count" %}'
)
request = RequestFactory().get("/")
request.user = User.objects.get(username="admin")
found["tags"] = page.render(Context({"request": request}))
request.user = AnonymousUser()
found["tags, anonymous"] = page.render(Context({"request": request}))
print(json.dumps(found))
"""


def readme_steps() -> dict[str, list[str]]:
    """The Python code blocks of each step of the README's "Using it in your project"."""
    readme = (REPO / "README.md").read_text()
    section = re.search(r"^## Using it in your project\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section, 'README.md has no section "Using it in your project"'
    steps: dict[str, list[str]] = {}
    parts = re.split(r"^\d+\. \*\*(.+?)\*\*", section.group(1), flags=re.M)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        blocks = re.findall(r"^( *)```python\n(.*?)^\1```", body, re.M | re.S)
        steps[name.rstrip(":")] = [textwrap.dedent(code) for _, code in blocks]
    return steps


def test_the_readme_has_the_steps_this_test_follows():
    steps = readme_steps()
    assert len(steps) == 5, list(steps)
    for name in STEP_FILES:
        assert name in steps and len(steps[name]) == 1, f"README step {name!r}: one Python block"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Environment:
    once_per_python()
    return environment(build(tmp_path_factory.mktemp("dist")))


class Project:
    def __init__(self, env: Environment, path: Path) -> None:
        self.env, self.path = env, path
        self.environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "DATABASE_URL", "CHARTBUILD_", "VIRTUAL_ENV"))
        }
        self.environ["PATH"] = f"{env.path / 'bin'}{os.pathsep}{os.environ['PATH']}"

    def run(self, *command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.env.bin(command[0]), *command[1:]],
            cwd=self.path,
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
        return done

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("python", "manage.py", *args)

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", textwrap.dedent(code)).stdout

    def output(self, name: str) -> str:
        return (self.path / "charts" / "shop" / name).read_text()


def test_a_new_project_follows_the_readme_to_live_charts(shipped, tmp_path):
    project = Project(shipped, tmp_path / "mysite")
    project.path.mkdir()
    project.run("django-admin", "startproject", "mysite", ".")
    project.manage("startapp", "shop")
    (project.path / "shop" / "models.py").write_text(MODEL)
    with (project.path / "mysite" / "settings.py").open("a") as settings:
        settings.write('\nINSTALLED_APPS += ["shop"]\nTIME_ZONE = "America/Los_Angeles"\n')

    for step, (name, how) in STEP_FILES.items():
        (code,) = readme_steps()[step]
        path = project.path / name
        path.write_text((path.read_text() + "\n" if how == "append" else "") + code)

    project.manage("makemigrations", "shop")
    project.manage("migrate")
    assert "no issues" in project.manage("check").stdout
    project.shell(
        f"""
        from datetime import datetime, timezone
        from django.contrib.auth.models import User
        from shop.models import Order
        User.objects.create_superuser("admin", "admin@example.com", "pw")
        for day, amount in {ORDERS!r}:
            when = datetime.fromisoformat(day).replace(hour=12, tzinfo=timezone.utc)
            Order.objects.create(created_at=when, amount=amount)
        """
    )

    built = project.run("doit")
    assert "failed 0" in built.stdout + built.stderr
    svg = project.output("revenue_per_month.svg")
    for month in ("Feb 2026", "Mar 2026", "Apr 2026", "May 2026"):
        assert month in svg, f"{month} is missing from the chart in TIME_ZONE America/Los_Angeles"
    assert json.loads(project.output("orders_count.json"))["value"] == 4

    (project.path / "site_check.py").write_text(SITE_CHECK)
    found = json.loads(project.run("python", "site_check.py").stdout.strip().splitlines()[-1])
    for url, (status, content_type) in [(k, v) for k, v in found.items() if k.startswith("/")]:
        assert status == 200, f"{url}: {status}"
        assert content_type, url
    status, location = found["anonymous"]
    assert status == 302 and location.startswith("/charts/login/?next=")
    status, login_page = found["login page"]
    assert status == 200 and 'name="password"' in login_page
    assert 'id="chart-shop-revenue_per_month"' in found["tags"]
    assert 'id="number-shop-orders_count"' in found["tags"]
    assert "chart-shop" not in found["tags, anonymous"]

    # update(), which sends no signal, reaches the chart at the next doit
    before = project.output("revenue_per_month.vl.json")
    project.shell(
        """
        from django.db.models import F
        from shop.models import Order
        Order.objects.update(amount=F("amount") * 2)
        """
    )
    project.run("doit")
    after = json.loads(project.output("revenue_per_month.vl.json"))
    assert after != json.loads(before)
    assert [row["revenue"] for row in after["data"]["values"]] == [21.0, 40.0, 60.5, 80.0]

    # so does a row another program inserts with raw SQL
    with sqlite3.connect(project.path / "db.sqlite3") as database:
        database.execute(
            "INSERT INTO shop_order (created_at, amount) VALUES ('2026-05-20 12:00:00', 5)"
        )
    project.run("doit")
    assert json.loads(project.output("orders_count.json"))["value"] == 5
    after = json.loads(project.output("revenue_per_month.vl.json"))
    assert after["data"]["values"][-1]["revenue"] == 85.0
