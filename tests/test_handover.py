"""A builder that takes over adopts the saved build state: it rebuilds only what changed."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest
from django.contrib.auth.models import User

from chartbuild.build.handover import CONSUMER
from chartbuild.models import BuildState, Consumer
from demo.shop.models import Product
from tests.doit import REPO, Auto, Build, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def host(tmp_path, name: str, storage: dict) -> Build:
    """A machine of its own (state and outputs) that publishes to the shared ``storage``."""
    build = Build(tmp_path / name)
    build.copy_demo_generators()
    build.env["CHARTBUILD_POLL_INTERVAL"] = "120"  # only NOTIFY explains a quick rebuild
    build.env["CHARTBUILD_TEST_STORAGE"] = json.dumps(storage)
    return build


def rebuilt(line: str) -> set[str]:
    """The charts a builder's summary line says it rebuilt."""
    found = re.search(r"-> rebuilt (.*?) in [0-9.]+ s", line)
    assert found, line
    return set() if found.group(1) == "no chart" else set(found.group(1).split(", "))


def test_a_takeover_rebuilds_only_what_changed(postgres, tmp_path):
    """Done-when 2: nothing changed, no chart rebuilt; after a change, only its charts."""
    Product.objects.create(name="Dune", category="books", price="9.50")
    User.objects.create(username="first")
    shared = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "published")},
    }
    one = Auto(host(tmp_path, "one", shared))
    two = None
    try:
        one.wait_for("leading: this builder builds")
        first = rebuilt(one.wait_for("-> rebuilt", timeout=120))
        assert {"users.total_users", "shop.orders_count"} <= first
        wait_until(lambda: BuildState.objects.exists(), timeout=10)
        assert Consumer.objects.filter(name__startswith=CONSUMER).exists()  # it holds pruning back

        two = Auto(host(tmp_path, "two", shared))
        two.wait_for("standby:")
        one.process.send_signal(signal.SIGKILL)
        one.process.wait(10)
        two.wait_for("leading: this builder builds", timeout=10)
        takeover = two.wait_for("-> rebuilt", timeout=120)
        assert "took over the build state of " in takeover
        assert rebuilt(takeover) == set(), takeover  # nothing changed: no chart rebuilt
        assert json.loads((two.build.out / "users" / "total_users.json").read_text())["value"] == 1

        User.objects.create(username="second")
        started = time.monotonic()
        after = rebuilt(two.wait_for("-> rebuilt users.", timeout=30))
        assert after and all(task.startswith("users.") for task in after), after
        assert "users.total_users" in after and time.monotonic() - started < 30
        assert json.loads((two.build.out / "users" / "total_users.json").read_text())["value"] == 2
    finally:
        for auto in (one, two):
            if auto is not None and auto.process.poll() is None:
                auto.stop()


def test_without_a_storage_nothing_is_saved(postgres, build):
    assert not BuildState.objects.exists()


def test_charts_a_partial_build_left_behind_are_rebuilt_by_the_next_builder(postgres, tmp_path):
    """A build of one generator exports every model's changes but rebuilds its own charts:
    the builder that adopts its state rebuilds the others' affected charts."""
    from demo.shop.models import Order

    product = Product.objects.create(name="Dune", category="books", price="9.50")
    customer = User.objects.create(username="first")
    shared = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "published")},
    }
    one = host(tmp_path, "one", shared)
    assert one.run().returncode == 0
    Order.objects.create(
        product=product, customer=customer, status="paid", quantity=1, amount="9.50"
    )
    User.objects.create(username="second")
    partial = one.run("gen:users")
    assert (
        partial.returncode == 0
        and partial.charts
        and {t.split(".")[0] for t in partial.charts} == {"users"}
    )

    two = host(tmp_path, "two", shared)
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "gencharts"],
        env=two.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if "-> rebuilt" in x)
    assert "took over the build state of " in line
    charts = rebuilt(line)
    assert "shop.orders_count" in charts, line  # the order the partial build left behind
    assert not [c for c in charts if c.startswith("users.")], line  # built from these inputs
    count = json.loads((two.out / "shop" / "orders_count.json").read_text())["value"]
    assert count == Order.objects.count() == 1


def test_a_one_off_doit_after_another_hosts_publication_rebuilds_nothing(postgres, tmp_path):
    """Every builder takes over the saved state, a one-off ``doit`` too: it rebuilds no
    chart another host has published, and no manifest entry goes back in time."""
    Product.objects.create(name="Dune", category="books", price="9.50")
    User.objects.create(username="first")
    shared = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "published")},
    }
    one = host(tmp_path, "one", shared)
    assert one.run().returncode == 0
    User.objects.create(username="second")
    assert one.run().returncode == 0  # the later publication: newer build times

    def built_at() -> dict[str, str]:
        published = json.loads((tmp_path / "published" / "manifest.json").read_text())
        return {e["task"]: e["built_at"] for e in published["entries"]}

    before = built_at()
    two = host(tmp_path, "two", shared)
    result = two.run(process=True)  # a one-off doit on another machine
    assert result.returncode == 0, result.stderr
    assert result.charts == set()
    assert "took over the build state of " in result.stderr
    after = built_at()
    assert all(after[task] >= when for task, when in before.items()), (before, after)
    assert json.loads((two.out / "users" / "total_users.json").read_text())["value"] == 2
