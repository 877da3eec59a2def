"""``doit auto [TASK ...]``: build, then rebuild whenever the data or the generators change.

doit 0.37 ships no ``auto`` command; chartbuild registers this one through doit's
``doit.COMMAND`` entry point, so it is there in every project that installs chartbuild.
Builds run in this process (Django, Altair and vl-convert stay loaded), each under the
build lock, which is released between builds. Ctrl-C and SIGTERM stop it: a build in
progress is interrupted between two files, doit saves what it finished, and the lock
goes with the process.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from pathlib import Path
from typing import Any

from doit.cmd_base import DodoTaskLoader, DoitCmdBase

from chartbuild.build.runner import BuildResult


class Auto(DoitCmdBase):  # type: ignore[misc]
    name = "auto"
    doc_purpose = "build, then rebuild whenever model events, generators or dodo.py change"
    doc_usage = "[TASK ...]"
    doc_description = (
        "Builds the selected tasks (default: all), then watches: the mqueue hook's wake-ups "
        "and PostgreSQL's NOTIFY (at once), an SQLite database's files (at once), the change "
        "tables (every CHARTBUILD_POLL_INTERVAL seconds), and the generators' sources and "
        "dodo.py (the task graph is reloaded). Ctrl-C or SIGTERM stop it."
    )
    cmd_options = ()

    def execute(self, params: Any, args: list[str]) -> int:
        dodo = Path(params["dodoFile"]).absolute()
        self.loader.setup(params)  # imports dodo.py, which sets Django up
        from chartbuild import conf
        from chartbuild.build import interrupts, render, runner
        from chartbuild.declare import catalog
        from chartbuild.export import exporter
        from chartbuild.live import leader, notify, reconnect, wakeup
        from chartbuild.live.watcher import StopWatching, Waker, Watcher

        reconnect.watch()

        def say(text: str) -> None:
            self.outstream.write(text + "\n")
            self.outstream.flush()

        leadership = leader.for_builder(conf.database(), say=say)
        freezer = Freezer()

        def build(tasks: list[str] = args) -> BuildResult:
            if leadership is not None:
                try:
                    leadership.confirm()
                except leader.LeadershipLost as exc:
                    raise StopWatching(str(exc)) from exc  # back to standby
            replaced = reconnect.refresh()
            result = runner.build(
                tasks,
                loader=DodoTaskLoader(),
                loader_args=["-f", str(dodo)],
                reset=bool(replaced),
                lead_session=leadership.session if leadership is not None else None,
            )
            freezer.settle()
            return result

        def sources() -> list[Path]:
            return [dodo, *(g.path for g in catalog.load().generators if g.path)]

        def reload(paths: set[Path]) -> None:
            freezer.thaw()  # the old generators' modules may be garbage now
            if dodo in paths:
                sys.modules.pop(dodo.stem, None)

        def watch() -> int:
            """Build, then watch, until stopped (or no longer the leader)."""
            wakers: dict[str, Waker] = {}
            try:
                wakers["signal"] = wakeup.Listener(conf.state_dir())
            except OSError as exc:
                say(
                    f"another watcher already listens for this state directory ({exc}); "
                    "this one does not hear the hook"
                )
            if notify.Listener.supported(conf.database()):
                wakers["notify"] = notify.Listener(conf.database(), say=say)
            watcher = Watcher(
                build,
                sources=sources,
                wakers=wakers,
                poll_interval=conf.poll_interval(),
                out=self.outstream,
                on_source_change=reload,
                export=lambda: build(["export"]),
                data_files=database_files(conf.database()),
                written_since=lambda result: (
                    bool(result.read)
                    and exporter.newest_change(conf.database()) > result.read.get("capture", 0)
                ),
            )
            named = {"signal": "the hook", "notify": "NOTIFY"}
            heard = " and ".join(
                [
                    *(named.get(name, name) for name in wakers),
                    *(["the database file"] if database_files(conf.database()) else []),
                ]
            )
            say(
                f"watching ({heard + ', ' if heard else ''}poll every {conf.poll_interval():g} s);"
                " Ctrl-C or SIGTERM to stop"
            )
            return watcher.run()

        interrupts.install()  # Ctrl-C and SIGTERM stop it at once, even inside a query
        # Renders go where the builds will run them (dodo.py's DOIT_CONFIG says): to the
        # worker processes of a parallel build, started now so that a rebuild renders at
        # once, or into this process's main thread.
        if self.loader.load_doit_config().get("num_process"):
            render.start_workers(practise=True)
        else:
            render.warm_up(practise=True)
        warm_up()
        try:
            while True:
                if leadership is not None:
                    leadership.wait()
                code = watch()
                if leadership is None:
                    return code
        except KeyboardInterrupt:
            pass  # only a stop gets here
        finally:
            if leadership is not None:
                leadership.release()
        self.outstream.write("stopped\n")
        self.outstream.flush()
        interrupts.leave(0)  # at once: not after the render workers' drawing


def database_files(using: str) -> list[Path]:
    """The files of SQLite database ``using`` (the database, its ``-wal`` and ``-journal``):
    a write to them by any program wakes the builder. None for another database."""
    from django.db import connections

    connection = connections[using]
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor != "sqlite" or not name or name == ":memory:" or "mode=memory" in name:
        return []
    path = Path(name.removeprefix("file:").split("?", 1)[0]).absolute()
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]


def warm_up() -> None:
    """Do now what the first chart of a process does slowly, so that the first rebuild is as
    fast as the next: import Altair and the generators, and make one chart's spec."""
    import altair as alt

    from chartbuild.declare import catalog
    from chartbuild.exceptions import GeneratorError

    alt.Chart(alt.Data(values=[{"a": 1}])).mark_bar().encode(x="a:Q", y="count():Q").to_dict()
    for generator in catalog.load().generators:
        if not generator.error:
            with contextlib.suppress(GeneratorError):  # the build says it, in its task
                catalog.import_generator(generator.module)


class Freezer:
    """Keeps a long-lived builder's settled objects out of the garbage collector's way.

    After its first build, nearly all of a watcher's objects stay for good: Django, Altair
    and its schema, the generators, the catalog. Left to the collector, every full
    collection walks them all again, about 50 ms on a site of 1,000 charts, in one build
    of two. Collected once and then frozen (:func:`gc.freeze`), they are skipped, and the
    collector walks only what each build makes. A reload of the task graph thaws them, so
    that the generators it replaces can be collected before the next freeze.
    """

    def __init__(self) -> None:
        self.settled = False

    def settle(self) -> None:
        """Collect, then freeze what is left (once, until :meth:`thaw`)."""
        if not self.settled:
            gc.collect()
            gc.freeze()
            self.settled = True

    def thaw(self) -> None:
        gc.unfreeze()
        self.settled = False
