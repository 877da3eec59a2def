"""What change capture costs the writers, and how fast a raw write reaches a chart.

On a scratch database (a temporary SQLite file, or ``--database-url``), migrated with the
demo's generators (so the capture triggers are installed), this measures in one run:

1. a tracked ``save()`` of a user (mqueue's event included), in autocommit mode, with the
   capture triggers and with them removed, alternating: medians of ``--rounds`` rounds of
   ``--saves`` saves each, and the median ratio of the paired rounds;
2. a ``--rows``-row ``update()`` of orders, with and without the triggers, alternating;
3. with ``doit auto`` running on that database (its poll interval as configured) and
   1,000 orders left, the latency from a raw ``INSERT`` by another connection (sqlite3 or
   psycopg, no Django, no hook) to the updated ``orders_count.json``: p50 and p95 over
   ``--changes`` writes, one a second.
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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="a scratch database (default: temporary SQLite)")
    parser.add_argument("--saves", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=11)
    parser.add_argument("--changes", type=int, default=30)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="chartbuild-bench-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{scratch / 'bench.sqlite3'}"
    os.environ["CHARTBUILD_STATE_DIR"] = str(scratch / "state")
    os.environ["CHARTBUILD_OUTPUT_DIR"] = str(scratch / "charts")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    import mqueue.hooks
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import F

    from chartbuild import conf
    from chartbuild.capture import triggers as capture
    from demo.shop.models import Order, Product

    call_command("migrate", verbosity=0)
    mqueue.hooks.HOOKS = {}  # the hook's own cost is bench/latency.py's
    Order.objects.all().delete()
    User.objects.filter(username__startswith="bench").delete()
    product = Product.objects.create(name="Bench", category="books", price="1.00")
    user = User.objects.create(username="bench")
    for start in range(0, args.rows, 10_000):
        Order.objects.bulk_create(
            Order(product=product, status="paid", quantity=1, amount="1.00")
            for _ in range(min(10_000, args.rows - start))
        )
    backend = capture.for_database()

    def switch(on: bool) -> None:
        if on:
            capture.sync()
        else:
            backend.remove()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE shop_order")

    # Alternate many short rounds: this machine's noise moves slower than a round.
    saves: dict[bool, list[float]] = {True: [], False: []}
    updates: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(max(args.rounds, args.updates)):
        for on in (True, False) if round_ % 2 else (False, True):
            switch(on)
            if round_ < args.rounds:
                for _ in range(10):  # warm the plans after the triggers changed
                    user.save()
                started = time.perf_counter()
                for i in range(args.saves):
                    user.first_name = f"n{i}"
                    user.save()
                saves[on].append((time.perf_counter() - started) / args.saves)
            if round_ < args.updates:
                started = time.perf_counter()
                Order.objects.update(quantity=F("quantity") + 1)
                updates[on].append(time.perf_counter() - started)
    switch(True)

    out = sys.stdout
    engine = connection.vendor
    out.write(f"capture on {engine} ({os.environ['DATABASE_URL'].split('@')[-1]})\n")
    for label, samples, unit, scale in (
        ("tracked save()", saves, "ms", 1e3),
        (f"{args.rows:,}-row update()", updates, "ms", 1e3),
    ):
        without, with_ = statistics.median(samples[False]), statistics.median(samples[True])
        pairs = zip(samples[False], samples[True], strict=True)
        paired = statistics.median(b / a for a, b in pairs)
        out.write(
            f"  {label:22s} without capture {without * scale:9.3f} {unit}"
            f"   with capture {with_ * scale:9.3f} {unit}"
            f"   ({(with_ / without - 1) * 100:+.1f}%; paired rounds {(paired - 1) * 100:+.1f}%,"
            f" {len(samples[True])} each)\n"
        )
    out.flush()

    # The latency is the capture's and the watcher's: keep the charts' own queries small.
    with connection.cursor() as cursor:  # raw: one statement, no mqueue event per order
        cursor.execute(
            "DELETE FROM shop_order WHERE id NOT IN"
            " (SELECT id FROM shop_order ORDER BY id LIMIT 1000)"
        )
    latencies = raw_write_latency(args.changes, scratch, connection, conf.poll_interval())
    out.write(
        f"  raw INSERT to chart      p50 {statistics.median(latencies) * 1e3:6.0f} ms"
        f"   p95 {percentile(latencies, 0.95) * 1e3:6.0f} ms   over {len(latencies)} writes"
        f" (doit auto, poll every {conf.poll_interval():g} s)\n"
    )
    connection.close()
    return 0


def raw_write_latency(changes: int, scratch: Path, connection, poll: float) -> list[float]:
    """Start ``doit auto``; time raw INSERTs from another connection to the output."""
    number = scratch / "charts" / "shop" / "orders_count.json"
    auto = subprocess.Popen(
        [str(BIN / "doit"), "-f", str(REPO / "dodo.py"), "auto"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ,
    )
    insert = (
        "INSERT INTO shop_order (product_id, status, quantity, amount, created_at)"
        " SELECT id, 'paid', 1, 1.00, CURRENT_TIMESTAMP FROM shop_product LIMIT 1"
    )
    if connection.vendor == "postgresql":
        import psycopg

        other = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    else:
        import sqlite3

        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    samples = []
    try:
        while "start:" not in (auto.stdout.readline() or "start:"):
            pass
        for _ in range(changes):
            before = json.loads(number.read_text())["value"]
            started = time.perf_counter()
            other.execute(insert)
            while json.loads(number.read_text())["value"] == before:
                time.sleep(0.002)
            samples.append(time.perf_counter() - started)
            time.sleep(1.0)  # one write a second: each finds the watcher idle
    finally:
        other.close()
        auto.terminate()
        auto.wait(60)
    return samples


if __name__ == "__main__":
    raise SystemExit(main())
