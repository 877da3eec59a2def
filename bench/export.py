"""The first export of many pending changes, and what a long history costs later exports.

On a scratch database (migrated, so the capture triggers are installed): inserts
``--events`` mqueue events spread over three models and as many change-log records with
one INSERT ... SELECT each, then times ``Exporter.run()``: the first run (everything
pending), a second and a third (the watermarks settle and the log is pruned). Then it
times an export after 10 new saves following that history, beside the same on an empty
history, each the median of 5.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url", help="a scratch database (default: a temporary SQLite file)"
    )
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="chartbuild-bench-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{scratch / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command
    from django.db import connection

    from chartbuild.export.exporter import Exporter

    call_command("migrate", verbosity=0)
    labels = ["auth.user", "shop.order", "shop.product"]
    types = [ContentType.objects.get_by_natural_key(*label.split(".")).pk for label in labels]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM mqueue_mevent")
        series = (
            "generate_series(1, %s) AS s(n)"
            if connection.vendor == "postgresql"
            else "(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < %s)"
            " SELECT n FROM c) AS s"
        )
        cursor.execute(
            "INSERT INTO mqueue_mevent (content_type_id, obj_pk, name, url, admin_url, notes,"
            " date_posted, event_class, request, bucket, data, scope)"
            f" SELECT CASE n %% 3 WHEN 0 THEN {types[0]} WHEN 1 THEN {types[1]}"
            f" ELSE {types[2]} END,"
            " n, 'bench', '', '', '', CURRENT_TIMESTAMP, 'Object edited', '', '', '{}', 'superuser'"
            f" FROM {series}",
            [args.events],
        )
        cursor.execute("DELETE FROM chartbuild_change")
        cursor.execute(
            "INSERT INTO chartbuild_change (table_name)"
            " SELECT CASE n %% 2 WHEN 0 THEN 'auth_user' ELSE 'shop_order' END"
            f" FROM {series}",
            [args.events],
        )
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE mqueue_mevent")  # as autovacuum would after such an insert
            cursor.execute("ANALYZE chartbuild_change")
    exporter = Exporter(labels, scratch / "state")
    for label in ("first export", "second export", "third export"):
        started = time.perf_counter()
        result = exporter.run()
        elapsed = time.perf_counter() - started
        sys.stdout.write(
            f"{connection.vendor}: {label} of {args.events:,} events and as many change"
            f" records: {elapsed:.3f} s, changed {list(result.changed)}\n"
        )
    after_history = ten_new(exporter)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM chartbuild_change")
        cursor.execute("DELETE FROM mqueue_mevent")
    fresh = Exporter(labels, scratch / "fresh")
    fresh.run()
    on_empty = ten_new(fresh)
    sys.stdout.write(
        f"{connection.vendor}: export after 10 new saves: {after_history * 1e3:.1f} ms after"
        f" that history, {on_empty * 1e3:.1f} ms on an empty one (medians of 5)\n"
    )
    if args.database_url is None:
        connection.close()
        for path in scratch.glob("bench.sqlite3*"):
            path.unlink()
    return 0


def ten_new(exporter) -> float:
    """Median time of an export that finds the changes of 10 new saves."""
    from django.contrib.auth.models import User

    samples = []
    for _ in range(5):
        for i in range(10):
            User.objects.create(username=f"bench-{time.time_ns()}-{i}")
        started = time.perf_counter()
        exporter.run()
        samples.append(time.perf_counter() - started)
    User.objects.filter(username__startswith="bench-").delete()
    return statistics.median(samples)


if __name__ == "__main__":
    raise SystemExit(main())
