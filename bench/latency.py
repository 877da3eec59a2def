"""Latency from a committed change to the updated output, with `doit auto` running on the demo.

Run ``scripts/demo`` first. Starts ``doit auto``, then ``--changes`` times creates a user
and waits for ``charts/users/total_users.json`` to show it: with the hook (signal), then
with no hook (woken by ``NOTIFY`` on PostgreSQL, the database's files on SQLite, or the
poll). Then, from the commit of another program (``psql``, ``sqlite3``) to the output: a
raw ``INSERT`` of a user, and on PostgreSQL a ``TRUNCATE`` of the orders
(``orders_count.json``; the demo's orders are put back after). Then times tracked saves
with and without the hook in the same run, and how long an idle ``doit auto`` takes to
end on SIGTERM. On PostgreSQL, last, the web node: ``doit auto`` publishing to a
``FileSystemStorage`` (``STORAGES["chartbuild"]``) and ``runserver`` in a second process
serving it; from the commit of a raw ``INSERT`` to the web node answering with the new
``total_users.json``, asked every 5 ms as the staff user. The users it creates are
deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sql_shell(settings: dict, vendor: str) -> list[str]:
    """The database's own shell, to run one statement as another program: psql, sqlite3."""
    if vendor == "sqlite":
        return ["sqlite3", "-cmd", ".timeout 5000", str(settings["NAME"])]
    url = (
        f"postgresql://{settings['USER']}@{settings['HOST'] or 'localhost'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    return ["psql", url, "-qc"]


def figures(label: str, samples: list[float]) -> str:
    return (
        f"{label:18s} p50 {statistics.median(samples) * 1000:6.0f} ms"
        f"   p95 {percentile(samples, 0.95) * 1000:6.0f} ms   over {len(samples)} changes"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--saves", type=int, default=300, help="saves per hook-cost sample")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    import mqueue.hooks
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection

    from chartbuild import conf
    from demo.shop.models import Order, Product

    number = conf.output_dir() / "users" / "total_users.json"
    hooks_on = dict(mqueue.hooks.HOOKS)
    auto = subprocess.Popen(
        [str(BIN / "doit"), "auto"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        while "start:" not in (auto.stdout.readline() or "start:"):
            pass
        time.sleep(3)  # its render workers start and practise, as in a builder that runs
        rng = random.Random(1)

        def latency() -> float:
            before = number.read_bytes()
            started = time.perf_counter()
            User.objects.create(username=f"bench-{time.time_ns()}")
            while number.read_bytes() == before:
                time.sleep(0.002)
            return time.perf_counter() - started

        def after_commit(run: list[str], output: Path) -> float:
            """From the commit of another program's statement to ``output`` changed."""
            before = output.read_bytes()
            subprocess.run(run, check=True, capture_output=True)  # it exits once committed
            committed = time.perf_counter()
            while output.read_bytes() == before:
                time.sleep(0.002)
            return time.perf_counter() - committed

        report = []
        for label, hooks in (("hook", hooks_on), ("no hook", {})):
            mqueue.hooks.HOOKS = hooks
            samples = []
            for _ in range(args.changes):
                samples.append(latency())
                time.sleep(rng.uniform(0.1, 0.4))
            report.append(figures(label, samples))
        mqueue.hooks.HOOKS = {}
        program = sql_shell(connection.settings_dict, connection.vendor)
        true = "true" if connection.vendor == "postgresql" else "1"
        samples = []
        for i in range(args.changes):
            username = f"bench-raw-{time.time_ns()}-{i}"
            insert = (
                "INSERT INTO auth_user (username, password, is_superuser, first_name,"
                " last_name, email, is_staff, is_active, date_joined) VALUES"
                f" ('{username}', '', {true}, '', '', '', {true}, {true}, CURRENT_TIMESTAMP)"
            )
            samples.append(after_commit([*program, insert], number))
            time.sleep(rng.uniform(0.1, 0.4))
        report.append(figures(f"raw INSERT ({program[0]})", samples))
        if connection.vendor == "postgresql":
            orders = list(Order.objects.all())
            count = conf.output_dir() / "shop" / "orders_count.json"
            product = Product.objects.first()
            customer = User.objects.first()
            samples = []

            def orders_counted(value: int) -> None:
                while json.loads(count.read_text())["value"] != value:
                    time.sleep(0.002)

            try:
                subprocess.run([*program, "TRUNCATE shop_order"], check=True, capture_output=True)
                orders_counted(0)
                for _ in range(max(1, args.changes // 2)):
                    Order.objects.create(
                        product=product, customer=customer, status="paid", quantity=1, amount=1
                    )
                    orders_counted(1)
                    time.sleep(rng.uniform(0.1, 0.4))
                    samples.append(after_commit([*program, "TRUNCATE shop_order"], count))
            finally:
                Order.objects.all().delete()
                Order.objects.bulk_create(orders)  # the demo's orders, as they were
            report.append(figures(f"TRUNCATE ({program[0]})", samples))
        time.sleep(2)  # idle: nothing to build, nothing to wait for
        stopping = time.perf_counter()
        auto.terminate()
        auto.wait(10)
        report.append(f"idle doit auto ends {time.perf_counter() - stopping:.2f} s after SIGTERM")
    finally:
        if auto.poll() is None:
            auto.terminate()
            auto.wait(10)

    if connection.vendor == "postgresql":
        report.append(web_node(args.changes, program, rng))
    user = User.objects.create(username=f"bench-{time.time_ns()}")
    cost: dict[str, list[float]] = {"without hook": [], "with hook": []}
    for _ in range(5):
        for label, hooks in (("without hook", {}), ("with hook", hooks_on)):
            mqueue.hooks.HOOKS = hooks
            started = time.perf_counter()
            for i in range(args.saves):
                user.first_name = f"n{i}"
                user.save()
            cost[label].append((time.perf_counter() - started) / args.saves)
    without, with_hook = (statistics.median(cost[k]) for k in ("without hook", "with hook"))
    mqueue.hooks.HOOKS = {}
    User.objects.filter(username__startswith="bench-").delete()  # raw ones too
    out = sys.stdout
    out.write(
        f"doit auto on the demo ({settings.DATABASES['default']['ENGINE']}), "
        f"poll interval {conf.poll_interval():g} s\n"
    )
    for line in report:
        out.write(line + "\n")
    out.write(
        f"tracked save: {without * 1e3:.3f} ms without the hook, {with_hook * 1e3:.3f} ms with it"
        f" ({(with_hook / without - 1) * 100:+.1f}%), median of 5 x {args.saves} saves\n"
    )
    return 0


def web_node(changes: int, program: list[str], rng: random.Random) -> str:
    """From a raw ``INSERT``'s commit to a second process (the web node) serving the new
    ``total_users.json`` from a ``FileSystemStorage``."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    root = Path(tempfile.mkdtemp(prefix="chartbuild-web-node-"))
    (root / "bench_storage.py").write_text(
        textwrap.dedent(
            f"""\
            from demo.settings import *  # noqa: F403

            STORAGES = {{
                "default": {{"BACKEND": "django.core.files.storage.FileSystemStorage"}},
                "staticfiles": {{
                    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
                }},
                "chartbuild": {{
                    "BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {{"location": {str(root / "published")!r}}},
                }},
            }}
            """
        )
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_storage",
        "PYTHONPATH": os.pathsep.join([str(root), str(REPO)]),
    }
    staff = User.objects.filter(is_staff=True, is_active=True).order_by("id").first()
    if staff is None:
        raise SystemExit("no staff user: run scripts/demo first")
    session = SessionStore()
    session[SESSION_KEY] = str(staff.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = staff.get_session_auth_hash()
    session.create()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/charts/users/total_users.json"
    opener = urllib.request.build_opener()
    opener.addheaders = [("Cookie", f"sessionid={session.session_key}")]

    def served() -> bytes:
        with opener.open(url, timeout=5) as response:
            return bytes(response.read())

    auto = subprocess.Popen(
        [str(BIN / "doit"), "auto"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    web = subprocess.Popen(
        [str(BIN / "python"), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples = []
    try:
        while "start:" not in (auto.stdout.readline() if auto.stdout else "start:"):
            pass
        time.sleep(3)  # its render workers start and practise
        deadline = time.monotonic() + 30
        while True:
            try:
                served()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        for i in range(changes):
            before = served()
            username = f"bench-web-{time.time_ns()}-{i}"
            insert = (
                "INSERT INTO auth_user (username, password, is_superuser, first_name,"
                " last_name, email, is_staff, is_active, date_joined) VALUES"
                f" ('{username}', '', true, '', '', '', true, true, CURRENT_TIMESTAMP)"
            )
            subprocess.run([*program, insert], check=True, capture_output=True)
            committed = time.perf_counter()
            while served() == before:
                time.sleep(0.005)
            samples.append(time.perf_counter() - committed)
            time.sleep(rng.uniform(0.1, 0.4))
    finally:
        for process in (auto, web):
            process.terminate()
            process.wait(10)
        session.delete()
    return figures("web node (storage)", samples)


if __name__ == "__main__":
    raise SystemExit(main())
