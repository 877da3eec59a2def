"""The first export of many pending events, on a scratch database.

Creates the database, migrates it, inserts ``--events`` mqueue events spread over
three models with one INSERT ... SELECT, then times ``Exporter.run()``: the first
run (everything pending) and a second one (nothing new).
"""

from __future__ import annotations

import argparse
import os
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

    from chartbuild.exporter import Exporter

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
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE mqueue_mevent")  # as autovacuum would after such an insert
    exporter = Exporter(labels, scratch / "state")
    for label in ("first export", "second export", "third export"):
        started = time.perf_counter()
        result = exporter.run()
        elapsed = time.perf_counter() - started
        sys.stdout.write(
            f"{connection.vendor}: {label} of {args.events:,} events: {elapsed:.3f} s,"
            f" changed {list(result.changed)}\n"
        )
    if args.database_url is None:
        connection.close()
        for path in scratch.glob("bench.sqlite3*"):
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
