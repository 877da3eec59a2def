"""Latency from a committed change to the updated output, with `doit auto` running on the demo.

Run ``scripts/demo`` first. Starts ``doit auto``, then ``--changes`` times creates a user
and waits for ``charts/users/total_users.json`` to show it: with the hook (signal), then
with polling only (the hook switched off in this process). Then times tracked saves with
and without the hook in the same run, and how long an idle ``doit auto`` takes to end on
SIGTERM. The users it creates are deleted at the end.
"""

from __future__ import annotations

import argparse
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

    from chartbuild import conf

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

        report = []
        for label, hooks in (("hook", hooks_on), ("polling only", {})):
            mqueue.hooks.HOOKS = hooks
            samples = []
            for _ in range(args.changes):
                samples.append(latency())
                time.sleep(rng.uniform(0.1, 0.4))
            report.append(
                f"{label:13s} p50 {statistics.median(samples) * 1000:6.0f} ms"
                f"   p95 {percentile(samples, 0.95) * 1000:6.0f} ms   over {len(samples)} changes"
            )
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
    User.objects.filter(username__startswith="bench-").delete()
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
