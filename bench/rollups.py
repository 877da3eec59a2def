"""A rollup against the full query, on PostgreSQL and SQLite side by side, at ``--orders``.

For each database (a temporary SQLite file, and the PostgreSQL server of
``--postgres-url``, in a scratch database made and dropped here), in a process of its
own: migrate the demo, insert ``--orders`` orders with one ``INSERT ... SELECT`` (the
rollups dropped meanwhile, then made and filled by ``store.make``, as ``migrate`` does),
then, each the median of 5:

- the demo's monthly revenue query in full (``Month``, ``Sum``, ``Count`` over the orders
  that are not cancelled), and the same rows from its rollup after one new order (the fold
  of that order's difference and the read);
- on PostgreSQL, what the rollups add to a tracked ``save()`` of an order (300 in
  autocommit) and to an ``update()`` of 100,000 orders, against the same with them dropped;
- on PostgreSQL, commit -> chart with ``doit auto`` on that database: a raw ``INSERT`` of
  an order from ``psql`` until ``revenue_per_month.svg`` is replaced.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--changes", type=int, default=20, help="commits timed with doit auto")
    parser.add_argument(
        "--only", choices=("SQLite", "PostgreSQL"), help="measure on this database alone"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a database's own process
    args = parser.parse_args(argv)
    if args.one:
        sys.stdout.write(json.dumps(measure(args.one, args.orders, args.changes)) + "\n")
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="chartbuild-rollups-"))
    base = args.postgres_url.rsplit("/", 1)[0]
    name = f"chartbuild_rollups_{os.getpid()}"
    databases = {"SQLite": f"sqlite:///{scratch / 'bench.sqlite3'}", "PostgreSQL": f"{base}/{name}"}
    admin = [*psql(args.postgres_url), "-qc"]
    subprocess.run([*admin, f"CREATE DATABASE {name}"], check=True)
    if args.only:
        databases = {args.only: databases[args.only]}
    figures = {}
    try:
        for label, url in databases.items():
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    url,
                    "--orders",
                    str(args.orders),
                    "--changes",
                    str(args.changes),
                ],
                env={
                    **os.environ,
                    "CHARTBUILD_OUTPUT_DIR": str(scratch / label / "charts"),
                    "CHARTBUILD_STATE_DIR": str(scratch / label / "state"),
                },
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise SystemExit(f"{label} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
            figures[label] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run([*admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)
    report(args.orders, figures)
    return 0


def psql(url: str) -> list[str]:
    return ["psql", url]


def report(orders: int, figures: dict[str, dict[str, float]]) -> None:
    out = sys.stdout
    out.write(f"{orders:,} orders; each figure the median of 5\n")
    out.write(f"{'':44s}{'PostgreSQL':>14s}{'SQLite':>14s}\n")

    def row(label: str, key: str, unit: str = "ms", scale: float = 1000) -> None:
        cells = []
        for db in ("PostgreSQL", "SQLite"):
            value = figures.get(db, {}).get(key)
            cells.append("-" if value is None else f"{value * scale:,.1f} {unit}")
        out.write(f"{label:44s}{cells[0]:>14s}{cells[1]:>14s}\n")

    row("monthly revenue, full query", "full")
    row("the same from its rollup, after one new row", "rollup")
    for db, f in figures.items():
        out.write(
            f"  {db}: the rollup is {f['full'] / f['rollup']:,.0f}x faster"
            " (goal: <= 10 ms, and >= 50x)\n"
        )
    if "PostgreSQL" not in figures:
        return
    pg = figures["PostgreSQL"]
    save, update = pg["save"] / pg["save_bare"] - 1, pg["update"] / pg["update_bare"] - 1
    out.write(
        f"PostgreSQL: tracked save() {pg['save'] * 1e3:.3f} ms with the rollups,"
        f" {pg['save_bare'] * 1e3:.3f} ms without ({save * 100:+.1f}%, goal <= +10%)\n"
    )
    out.write(
        f"PostgreSQL: update() of 100,000 orders {pg['update']:.2f} s with the rollups,"
        f" {pg['update_bare']:.2f} s without ({update * 100:+.1f}%, goal <= +15%)\n"
    )
    out.write(
        f"PostgreSQL: commit -> revenue chart with doit auto p50 {pg['commit_p50'] * 1e3:.0f} ms,"
        f" p95 {pg['commit_p95'] * 1e3:.0f} ms (goal p50 <= 150 ms)\n"
    )


def measure(url: str, orders: int, changes: int) -> dict[str, float]:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count, F, Sum

    from chartbuild.models import RollupState
    from chartbuild.periods import Month
    from chartbuild.rollups import store
    from demo.shop.models import Order
    from generators.shop import orders as order_rollup
    from generators.shop import sales

    call_command("migrate", verbosity=0)
    call_command("seed_demo", orders=1000, verbosity=0)
    rollups = [sales, order_rollup]
    for rollup in rollups:
        store.drop(rollup)
    RollupState.objects.all().delete()
    seed(connection, orders)
    for rollup in rollups:
        store.make(rollup)
    order = Order.objects.order_by("id").first()

    def full() -> list:
        return list(
            Order.objects.exclude(status="cancelled")
            .annotate(month=Month("created_at"))
            .values("month")
            .annotate(revenue=Sum("amount"), orders=Count("id"))
            .order_by("month")
        )

    def after_one_row() -> float:
        Order.objects.create(
            product_id=order.product_id,
            customer_id=order.customer_id,
            status="paid",
            quantity=1,
            amount=order.amount,
            created_at=order.created_at,
        )
        started = time.perf_counter()
        sales.rows(by=["month"], order_by=["month"])
        return time.perf_counter() - started

    figures = {
        "full": median(5, lambda: timed(full)),
        "rollup": median(5, after_one_row),
    }
    if connection.vendor != "postgresql":
        return figures

    def saves(count: int = 300) -> float:
        started = time.perf_counter()
        for i in range(count):
            order.quantity = 1 + i % 3
            order.save()
        return (time.perf_counter() - started) / count

    def update() -> float:
        started = time.perf_counter()
        Order.objects.filter(id__lte=100_000).update(quantity=F("quantity") + 1)
        return time.perf_counter() - started

    with_rollups: dict[str, list[float]] = {"save": [], "update": []}
    without: dict[str, list[float]] = {"save": [], "update": []}
    for _ in range(5):  # in turns: the machine's other work drifts over minutes
        with_rollups["save"].append(saves())
        with_rollups["update"].append(update())
        for rollup in rollups:
            store.drop(rollup)
        without["save"].append(saves())
        without["update"].append(update())
        for rollup in rollups:
            store.make(rollup)
    figures.update(
        save=statistics.median(with_rollups["save"]),
        save_bare=statistics.median(without["save"]),
        update=statistics.median(with_rollups["update"]),
        update_bare=statistics.median(without["update"]),
    )
    figures.update(commit_figures(connection, changes))
    return figures


def seed(connection, orders: int) -> None:
    """``orders`` orders over two years, in one statement (no Python per row)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), count(*) FROM shop_product")
        first_product, products = cursor.fetchone()
        if connection.vendor == "postgresql":
            cursor.execute(
                "INSERT INTO shop_order (product_id, customer_id, status, quantity, amount,"
                " created_at) SELECT %s + i %% %s, NULL,"
                " (ARRAY['pending','paid','shipped','cancelled'])[1 + i %% 4], 1 + i %% 3,"
                " (i %% 10000) / 100.0 + 1, now() - (i %% 730) * interval '1 day'"
                " FROM generate_series(1, %s) AS i",
                [first_product, products, orders],
            )
        else:
            cursor.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s)"
                " INSERT INTO shop_order (product_id, customer_id, status, quantity, amount,"
                " created_at) SELECT %s + i %% %s, NULL,"
                " CASE i %% 4 WHEN 0 THEN 'pending' WHEN 1 THEN 'paid' WHEN 2 THEN 'shipped'"
                " ELSE 'cancelled' END, 1 + i %% 3, (i %% 10000) / 100.0 + 1,"
                " strftime('%%Y-%%m-%%d %%H:%%M:%%S', 'now', '-' || (i %% 730) || ' days')"
                " FROM n",
                [orders, first_product, products],
            )


def commit_figures(connection, changes: int) -> dict[str, float]:
    """Commit -> revenue_per_month.svg replaced, with doit auto running on this database."""
    from chartbuild import conf

    svg = conf.output_dir() / "shop" / "revenue_per_month.svg"
    db = connection.settings_dict
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    subprocess.run([str(BIN / "doit")], cwd=REPO, check=True, capture_output=True)
    auto = subprocess.Popen(
        [str(BIN / "doit"), "auto"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    samples = []
    try:
        while "watching" not in (auto.stdout.readline() if auto.stdout else "watching"):
            pass
        time.sleep(3)  # its render workers start and practise
        for _ in range(changes):
            before = svg.stat().st_ino
            subprocess.run(
                [
                    *psql(url),
                    "-qc",
                    "INSERT INTO shop_order (product_id, status, quantity, amount, created_at)"
                    " SELECT product_id, 'paid', 1, 123.45, now() FROM shop_order LIMIT 1",
                ],
                check=True,
                capture_output=True,
            )
            committed = time.perf_counter()
            while svg.stat().st_ino == before and time.perf_counter() - committed < 10:
                time.sleep(0.002)
            samples.append(time.perf_counter() - committed)
            time.sleep(0.3)
    finally:
        auto.terminate()
        auto.wait(30)
    samples.sort()
    return {
        "commit_p50": statistics.median(samples),
        "commit_p95": samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))],
    }


def timed(func) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def median(runs: int, func) -> float:
    return statistics.median(func() for _ in range(runs))


if __name__ == "__main__":
    raise SystemExit(main())
