"""A site with 1,000 charts, 200 numbers and 20 models: each figure beside its floor.

Generates (in a temporary directory, nothing is committed) a Django project beside the
demo's settings: an app with ``--models`` models of ``--rows`` rows each, and one
generator per model with its share of ``--charts`` charts and ``--numbers`` numbers,
all aggregated in the database. Then, in one run:

- floor: the same outputs made in one process by calling chartbuild's own action for
  each chart and number, then the dashboards and the manifest once (no doit);
- a full build, sequential (``doit -n 1``) and with the default parallelism;
- the rebuild after one row of one model changed, beside its share of the full build:
  in a running ``doit auto``, the builder that rebuilds after a commit, and (for
  comparison) in a one-off ``doit`` process, which also starts Altair and vl-convert's
  engine, once per process;
- a no-op ``doit`` beside ``django.setup()`` alone;
- on the database given (a temporary SQLite file by default): the export of
  ``--events`` pending mqueue events beside the raw ``GROUP BY`` over them, and a
  monthly chart over ``--events`` rows with ``chartbuild.periods.Month`` beside
  hand-written native SQL.

Build times are wall times of the ``doit`` process minus a no-op ``doit`` (Django's
start, the task graph), so they compare with the floor's, measured after its start. The
floor, the full builds and the running builder's first rebuild are each the best of two
runs (the floor and the sequential build taken in turns, and the parallel build and a
running builder's rebuilds), as the machine's other work can slow any one of them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def site(root: Path, models: int, charts: int, numbers: int) -> None:
    """Write the generated project under ``root``."""
    package = root / "scale_site"
    (package / "data" / "migrations").mkdir(parents=True, exist_ok=True)
    (package / "gens").mkdir(exist_ok=True)
    for init in (package, package / "data", package / "data" / "migrations", package / "gens"):
        (init / "__init__.py").write_text("")
    (package / "settings.py").write_text(
        textwrap.dedent(
            f"""\
            from demo.settings import *  # noqa: F403
            from demo.settings import INSTALLED_APPS

            INSTALLED_APPS = [*INSTALLED_APPS, "scale_site.data"]
            CHARTBUILD_GENERATORS = [
                *(f"scale_site.gens.g{{i:02d}}" for i in range({models})),
                "scale_site.gens.lone",
            ]
            """
        )
    )
    (package / "data" / "apps.py").write_text(
        "from django.apps import AppConfig\n\n\n"
        "class DataConfig(AppConfig):\n"
        '    name = "scale_site.data"\n'
        '    label = "data"\n'
        '    default_auto_field = "django.db.models.BigAutoField"\n'
    )
    body = ["from django.db import models\n"]
    for i in range(models):
        body.append(
            f"\n\nclass M{i:02d}(models.Model):\n"
            "    category = models.CharField(max_length=10)\n"
            "    value = models.IntegerField()\n"
            "    created = models.DateTimeField()\n"
        )
    body.append(
        "\n\nclass Lone(models.Model):\n"
        '    """Read by one chart only."""\n\n'
        "    value = models.IntegerField()\n"
    )
    (package / "data" / "models.py").write_text("".join(body))
    (package / "gens" / "lone.py").write_text(
        "import altair as alt\n"
        "from django.db.models import Count\n\n"
        "from chartbuild import chart\n"
        "from scale_site.data.models import Lone\n\n\n"
        "@chart(models=[Lone])\ndef values():\n"
        '    """Rows per value"""\n'
        "    rows = Lone.objects.values('value').annotate(n=Count('id')).order_by('value')\n"
        "    return alt.Chart(alt.Data(values=list(rows))).mark_bar()"
        ".encode(x='value:O', y='n:Q')\n"
    )
    per_charts, per_numbers = charts // models, numbers // models
    for i in range(models):
        lines = [
            "import altair as alt\n",
            "from django.db.models import Count\n\n",
            "from chartbuild import chart, number\n",
            f"from scale_site.data.models import M{i:02d} as M\n",
        ]
        for c in range(per_charts):
            lines.append(
                f"\n\n@chart(models=[M])\ndef chart_{c:03d}():\n"
                f'    """Rows per category with a value of at least {c}"""\n'
                f"    rows = M.objects.filter(value__gte={c}).values('category')"
                ".annotate(n=Count('id')).order_by('category')\n"
                "    return alt.Chart(alt.Data(values=list(rows))).mark_bar()"
                ".encode(x='category:N', y='n:Q')\n"
            )
        for n in range(per_numbers):
            lines.append(
                f"\n\n@number(models=[M], label='Rows of {n} or more')\ndef number_{n:03d}():\n"
                f"    return M.objects.filter(value__gte={n}).count()\n"
            )
        (package / "gens" / f"g{i:02d}.py").write_text("".join(lines))
    (root / "dodo.py").write_text(
        "import os\n\nimport django\n\n"
        'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scale_site.settings")\n'
        "django.setup()\n\n"
        "from chartbuild.tasks import *  # noqa: E402, F403\n"
        "from chartbuild.tasks import doit_config  # noqa: E402\n\n"
        "DOIT_CONFIG = doit_config()\n"
    )


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr}")
    return elapsed


def median_of(runs: int, command: list[str], env: dict[str, str], cwd: Path) -> float:
    return statistics.median(timed(command, env, cwd) for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--charts", type=int, default=1000)
    parser.add_argument("--numbers", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="a scratch database (default: temporary SQLite)")
    parser.add_argument(
        "--queries-only", action="store_true", help="only the export and monthly-chart figures"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one full build (no floor, no sequential build): for --charts 10000",
    )
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="chartbuild-scale-"))
    site(root, args.models, args.charts, args.numbers)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scale_site.settings",
        "DATABASE_URL": args.database_url or f"sqlite:///{root / 'scale.sqlite3'}",
        "CHARTBUILD_STATE_DIR": str(root / "state"),
        "CHARTBUILD_OUTPUT_DIR": str(root / "charts"),
        "PYTHONPATH": os.pathsep.join([str(root), str(REPO)]),
    }
    os.environ.update(env)
    sys.path[:0] = [str(root), str(REPO)]
    out = sys.stdout

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    python = [sys.executable]
    manage = [
        *python,
        "-c",
        "from django.core.management import execute_from_command_line;"
        " import sys; execute_from_command_line(sys.argv)",
    ]
    subprocess.run([*manage, "makemigrations", "data", "-v", "0"], env=env, cwd=root, check=True)
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, cwd=root, check=True)

    import django

    django.setup()
    from django.db import connection
    from scale_site.data import models as data

    from chartbuild import conf
    from chartbuild.build import actions, render
    from chartbuild.declare import catalog
    from chartbuild.publish import manifest as manifest_file
    from chartbuild.publish import outputs, pages

    seed(data, args.models, args.rows)
    cat = catalog.load()
    tasks = sum(len(g.declarations) for g in cat.generators)
    say(
        f"{connection.vendor}: {args.charts} charts, {args.numbers} numbers, {args.models} models"
        f" of {args.rows} rows ({tasks} tasks); {os.cpu_count()} cores"
    )

    if args.queries_only:
        export_figures(connection, args.events, say)
        if connection.vendor == "sqlite":
            month_figures(connection, args.events, say)
        return 0

    # Floor: the same outputs, in this process, without doit.
    render.warm_up()

    def make_everything() -> None:
        for generator in cat.generators:
            for declaration in generator.declarations:
                files, _ = actions.make(generator, declaration)
                outputs.replace_set(files)
        for generator in cat.generators:
            pages.write(generator, [d.name for d in generator.declarations])
        manifest_file.write(cat)

    def fresh() -> None:
        for folder in (conf.state_dir(), conf.output_dir()):
            subprocess.run(["rm", "-rf", str(folder)], check=True)

    doit = [str(BIN / "doit"), "-f", str(root / "dodo.py")]
    setup = [*python, "-c", "import django; django.setup()"]
    fresh()
    first_build = timed(doit, env, root)  # the no-op below needs built state
    noop = median_of(5, doit, env, root)
    if args.quick:
        full = first_build - noop
        say(f"  full build, default parallelism ({conf.parallel()} threads)  {full:7.2f} s")
        site_figures(full, doit, setup, env, root, data, say)
        return 0

    def floor_run() -> float:
        fresh()  # as a full build does, it writes every file
        started = time.perf_counter()
        make_everything()
        return time.perf_counter() - started

    def full_build(*options: str) -> float:
        fresh()
        return timed([*doit, *options], env, root) - noop

    # Each the best of two, taken in turns: the machine's other work drifts over minutes.
    floors, sequentials = [], []
    for _ in range(2):
        floors.append(floor_run())
        sequentials.append(full_build("-n", "1"))
    floor, sequential = min(floors), min(sequentials)
    say(f"  floor: the outputs made in one process, no doit          {floor:7.2f} s")
    say(
        f"  full build, sequential                                     {sequential:7.2f} s"
        f"  {sequential / floor:.2f}x the floor (goal <= 1.3x)"
    )
    # The full build and the running builder's rebuilds, in turns, for the same reason.
    parallels, firsts, next_ones = [], [], []
    for _ in range(2):
        parallels.append(full_build())
        first, *later = live_rebuilds(doit, env, root, data, 4)
        firsts.append(first)
        next_ones += later
    parallel, first = min(parallels), min(firsts)
    say(
        f"  full build, default parallelism ({conf.parallel()} threads)"
        f"           {parallel:7.2f} s"
        f"  {parallel / sequential:.2f}x sequential (goal <= 0.75x)"
    )
    share = (args.charts + args.numbers) // args.models / tasks
    say(
        f"  rebuild after one row of M07 changed ({share * tasks:.0f} tasks), in a running"
        f" doit auto {first:5.2f} s  {first / (share * parallel):.2f}x its share of the full"
        " build (goal <= 1.2x)"
    )
    steady = statistics.median(next_ones)
    say(
        f"    its next {len(next_ones)} rebuilds (median)                              "
        f"{steady:7.2f} s  {steady / (share * parallel):.2f}x"
    )
    changed = data.M07.objects.order_by("id").first()
    changed.value += 1
    changed.save()
    rebuild = timed(doit, env, root) - noop
    say(
        f"  the same in a one-off doit process                          {rebuild:7.2f} s"
        f"  {rebuild / (share * parallel):.2f}x"
    )
    startup = median_of(3, [*python, "-c", FRESH_RENDERER], env, root) - median_of(
        3, [*python, "-c", "pass"], env, root
    )
    say(
        f"    of which a fresh process's renderer (vl-convert's first chart) {startup:5.2f} s"
        f" = {startup / (share * parallel):.2f}x the share"
    )
    site_figures(parallel, doit, setup, env, root, data, say)
    export_figures(connection, args.events, say)
    if connection.vendor == "sqlite":
        month_figures(connection, args.events, say)
    return 0


def site_figures(full: float, doit, setup, env, root: Path, data, say) -> None:
    """The full build (``full`` seconds, default parallelism) beside vl-convert alone; a
    no-op beside ``django.setup()``; a row of the model one chart reads to its chart."""
    from chartbuild import conf

    alone, alone_cpu = vl_convert_alone(conf.output_dir())
    say(
        f"  vl-convert alone, the same SVGs and PNGs in one process  {alone:7.2f} s"
        f"  the parallel build is {full / alone:.2f}x (goal <= 0.65x on 2 cores)"
    )
    cores = os.cpu_count() or 1
    everywhere = vl_convert_on_every_core(conf.output_dir(), cores)
    say(
        f"    vl-convert alone keeps {alone_cpu / alone:.2f} cores busy ({alone_cpu:.2f} s of"
        f" CPU); the same drawing in {cores} processes at once {everywhere:.2f} s ="
        f" {everywhere / alone:.2f}x: the least any build can take to draw them here"
    )
    functions = functions_alone()
    least = (functions + alone_cpu) / cores
    say(
        f"  the chart and number functions alone (their queries and Altair charts, in one"
        f" process) {functions:.2f} s: with vl-convert's CPU time, at least {least:.2f} s on"
        f" {cores} cores = {least / alone:.2f}x vl-convert alone"
    )
    noop_figures(doit, setup, env, root, say)
    lone_figures(doit, env, root, data, say)


def _specs(output: Path) -> list[dict]:
    import json

    return [json.loads(path.read_text()) for path in sorted(output.glob("*/*.vl.json"))]


def vl_convert_alone(output: Path) -> tuple[float, float]:
    """Seconds vl-convert takes, in this process, to draw every chart's SVG and PNG from
    the specs a build wrote (as chartbuild's renderer does: the PNG from the SVG), and the
    CPU seconds it used meanwhile (its engine runs threads of its own)."""
    import resource

    import vl_convert

    specs = _specs(output)
    vl_convert.vegalite_to_svg({"mark": "point"})  # its engine is started, as in a builder
    used = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for spec in specs:
        vl_convert.svg_to_png(vl_convert.vegalite_to_svg(spec))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
    return wall, cpu


def _draw(specs: list[dict]) -> None:
    import vl_convert

    for spec in specs:
        vl_convert.svg_to_png(vl_convert.vegalite_to_svg(spec))


def _start_engine() -> None:
    import vl_convert

    vl_convert.vegalite_to_svg({"mark": "point"})


def vl_convert_on_every_core(output: Path, cores: int) -> float:
    """Seconds ``cores`` processes take to draw the same SVGs and PNGs, each a share of
    them (their engines started first): what vl-convert alone can do on this machine."""
    import multiprocessing

    specs = _specs(output)
    shares = [specs[i::cores] for i in range(cores)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(cores, initializer=_start_engine) as pool:
        pool.map(_noop, range(4 * cores), chunksize=1)
        started = time.perf_counter()
        pool.map(_draw, shares, chunksize=1)
        return time.perf_counter() - started


def _noop(_: int) -> None:
    """Waits for each worker to have started (its initializer has run)."""


def functions_alone() -> float:
    """Seconds the site's own chart and number functions take, in this process, with
    Altair's conversion to a Vega-Lite spec: the work a build cannot hand to vl-convert
    (with Altair's table of schema classes kept, as a build keeps it)."""
    from chartbuild.build import schemas
    from chartbuild.declare import catalog

    schemas.install()

    functions = [
        catalog.function(generator, declaration.name)
        for generator in catalog.load().generators
        for declaration in generator.declarations
    ]
    started = time.perf_counter()
    for function in functions:
        value = function()
        if hasattr(value, "to_dict"):
            value.to_dict()
    return time.perf_counter() - started


def noop_figures(doit: list[str], setup: list[str], env: dict[str, str], root: Path, say) -> None:
    """A no-op doit beside django.setup(), in turns, the median of 9 of each."""
    noops, setups = [], []
    for _ in range(9):
        noops.append(timed(doit, env, root))
        setups.append(timed(setup, env, root))
    noop, floor_setup = statistics.median(noops), statistics.median(setups)
    say(
        f"  no-op doit {noop:.3f} s, django.setup() {floor_setup:.3f} s:"
        f" +{noop - floor_setup:.3f} s (goal <= +0.1 s)"
    )


def lone_figures(doit: list[str], env: dict[str, str], root: Path, data, say, times: int = 15):
    """In a running doit auto: a row added to the model only one chart reads -> that
    chart's SVG replaced on disk (p50, max)."""
    from chartbuild import conf
    from chartbuild.live import wakeup

    svg = conf.output_dir() / "lone" / "values.svg"
    auto = subprocess.Popen(
        [*doit, "auto"],
        env={**env, "CHARTBUILD_POLL_INTERVAL": "600"},
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    took = []
    try:
        while "watching" not in (auto.stdout.readline() or "watching"):
            pass
        time.sleep(4)  # let the render workers start and practise, as in a running watcher
        for k in range(times):
            before = os.stat(svg).st_ino
            data.Lone.objects.create(value=k % 7)
            committed = time.perf_counter()
            wakeup.send(conf.state_dir())  # what the hook does after a tracked save
            while os.stat(svg).st_ino == before and time.perf_counter() - committed < 10:
                time.sleep(0.001)
            took.append(time.perf_counter() - committed)
            time.sleep(0.5)
    finally:
        auto.terminate()
        auto.wait(30)
    took.sort()
    say(
        f"  a row added to the model one chart reads -> its SVG on disk, in a running doit auto:"
        f" p50 {statistics.median(took) * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms over"
        f" {times} (goal p50 <= 150 ms)"
    )


#: What a fresh process pays before its first SVG: vl-convert's engine starts.
FRESH_RENDERER = "import vl_convert; vl_convert.vegalite_to_svg({'mark': 'point'})"


def live_rebuilds(
    doit: list[str], env: dict[str, str], root: Path, data, times: int
) -> list[float]:
    """Seconds ``doit auto`` takes to rebuild after one row of M07 changed (its own figure),
    ``times`` times in a row."""
    import re

    from chartbuild import conf
    from chartbuild.live import wakeup

    auto = subprocess.Popen(
        [*doit, "auto"],
        env={**env, "CHARTBUILD_POLL_INTERVAL": "600"},
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        while "start:" not in (auto.stdout.readline() or "start:"):
            pass
        time.sleep(4)  # let the render workers start and practise, as in a running watcher
        took = []
        for _ in range(times):
            changed = data.M07.objects.order_by("id").first()
            changed.value += 1
            changed.save()
            wakeup.send(conf.state_dir())  # what the hook does after a tracked save
            while True:
                line = auto.stdout.readline()
                found = re.search(r"rebuilt .* in ([0-9.]+) s", line)
                if found or not line:
                    took.append(float(found.group(1)) if found else float("nan"))
                    break
            time.sleep(1)
        return took
    finally:
        auto.terminate()
        auto.wait(30)


def seed(data, models: int, rows: int) -> None:
    import datetime as dt
    import random

    rng = random.Random(1)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i in range(models):
        model = getattr(data, f"M{i:02d}")
        model.objects.bulk_create(
            model(
                category=rng.choice("abcdefgh"),
                value=rng.randrange(100),
                created=start + dt.timedelta(minutes=rng.randrange(60 * 24 * 365)),
            )
            for _ in range(rows)
        )


def _series(connection, n: int) -> str:
    if connection.vendor == "postgresql":
        return f"generate_series(1, {n}) AS s(n)"
    return (
        "(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c"
        f" WHERE n < {n}) SELECT n FROM c) AS s"
    )


def export_figures(connection, events: int, say) -> None:
    """The events aggregate of the export beside the raw GROUP BY, over pending events."""
    from django.contrib.contenttypes.models import ContentType

    from chartbuild.export.exporter import EventsSource

    types = list(ContentType.objects.values_list("pk", flat=True)[:20])
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM mqueue_mevent")
        cases = " ".join(f"WHEN {k} THEN {t}" for k, t in enumerate(types))
        cursor.execute(
            "INSERT INTO mqueue_mevent (content_type_id, obj_pk, name, url, admin_url, notes,"
            " date_posted, event_class, request, bucket, data, scope)"
            f" SELECT CASE n % {len(types)} {cases} END,"
            " n, 'bench', '', '', '', CURRENT_TIMESTAMP, 'Object edited', '', '', '{}', 'superuser'"
            f" FROM {_series(connection, events)}"
        )
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE mqueue_mevent")

    def raw() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT content_type_id, COUNT(*), MAX(id) FROM mqueue_mevent"
                " GROUP BY content_type_id"
            )
            cursor.fetchall()

    source = EventsSource("default")
    raw_time = best_of(5, raw)
    ours = best_of(5, lambda: source.aggregate(0, 0))
    say(
        f"  export of {events:,} pending events: the aggregate {ours * 1000:.0f} ms, raw GROUP BY"
        f" {raw_time * 1000:.0f} ms: {ours / raw_time:.2f}x (goal <= 2x)"
    )


def month_figures(connection, rows: int, say) -> None:
    """A monthly count over ``rows`` rows: chartbuild.periods.Month beside native SQL."""
    from django.db.models import Count
    from scale_site.data.models import M00

    from chartbuild.periods import Month

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM data_m00")
        cursor.execute(
            "INSERT INTO data_m00 (category, value, created) SELECT 'a', n % 100,"
            " datetime('2024-01-01', '+' || (n % 525600) || ' minutes')"
            f" FROM {_series(connection, rows)}"
        )

    def ours() -> None:
        list(M00.objects.annotate(m=Month("created")).values("m").annotate(n=Count("id")))

    def native() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT strftime('%Y-%m-01', created) AS m, COUNT(*) FROM data_m00 GROUP BY m"
            )
            cursor.fetchall()

    mine, theirs = best_of(3, ours), best_of(3, native)
    say(
        f"  monthly chart over {rows:,} rows on SQLite: Month() {mine * 1000:.0f} ms,"
        f" native SQL {theirs * 1000:.0f} ms: {mine / theirs:.2f}x (goal <= 1.5x)"
    )


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


if __name__ == "__main__":
    raise SystemExit(main())
