"""Latency from a committed change to the updated output, with `doit auto` running on the demo.

Run ``scripts/demo`` first. Starts ``doit auto``, then ``--changes`` times creates a user
and waits for ``charts/users/total_users.json`` to show it: with the hook (signal), then
with no hook (woken by ``NOTIFY`` on PostgreSQL, the database's files on SQLite, or the
poll). Then, from the commit of another program (``psql``, ``sqlite3``) to the output: a
raw ``INSERT`` of a user, and on PostgreSQL a ``TRUNCATE`` of the orders
(``orders_count.json``; the demo's orders are put back after). Then times tracked saves
with and without the hook in the same run, and how long an idle ``doit auto`` takes to
end on SIGTERM. The users it creates are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
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


if __name__ == "__main__":
    raise SystemExit(main())
