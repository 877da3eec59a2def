"""A no-op build of the demo, beside the cost of starting Django with the demo settings.

Run ``scripts/demo`` first. Prints medians over ``--runs`` runs of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(command: list[str], runs: int) -> list[float]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "demo.settings"}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    floor_cmd = [str(BIN / "python"), "-c", "import django; django.setup()"]
    build_cmd = [str(BIN / "doit")]
    timed(build_cmd, 2)  # warm up: the first run after a change is not a no-op
    floor = timed(floor_cmd, args.runs)
    build = timed(build_cmd, args.runs)
    f, b = statistics.median(floor), statistics.median(build)
    sys.stdout.write(
        f"django.setup() floor: median {f:.3f} s\n"
        f"no-op doit:           median {b:.3f} s\n"
        f"difference:           {b - f:+.3f} s over {args.runs} runs each\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
