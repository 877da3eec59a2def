"""The site's costs on the demo: what an open page's poll costs, and a dashboard.

Run ``scripts/demo`` first. Through Django's test client (no network), as the demo's
staff user: ``state.json`` answered in full and as a 304, a dashboard, a chart's SVG as a
304, each the median of ``--runs`` requests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's hosts
    client = Client()
    client.force_login(User.objects.get(username="staff"))

    def median_ms(url: str, **headers: str) -> tuple[float, int]:
        times, status = [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            times.append(time.perf_counter() - started)
            status = response.status_code
        return statistics.median(times) * 1000, status

    state = client.get("/charts/shop/state.json")
    svg = client.get("/charts/shop/revenue_per_month.svg")
    figures = [
        ("state.json, full", *median_ms("/charts/shop/state.json")),
        (
            "state.json, unchanged",
            *median_ms("/charts/shop/state.json", if_none_match=state["ETag"]),
        ),
        ("dashboard /charts/shop/", *median_ms("/charts/shop/")),
        (
            "chart SVG, unchanged",
            *median_ms("/charts/shop/revenue_per_month.svg", if_none_match=svg["ETag"]),
        ),
    ]
    out = sys.stdout
    out.write(f"median of {args.runs} requests, demo staff user, Django test client\n")
    for name, ms, status in figures:
        out.write(f"  {name:<28} {ms:7.2f} ms  (HTTP {status})\n")
    out.write(f"  state.json body: {len(state.content)} bytes; 304: no body\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
