"""Rendering Vega-Lite specs to SVG with vl-convert: here, or in worker processes.

A serial build renders in its own process. A parallel build runs its tasks in threads
(doit's ``-P thread``, see :mod:`chartbuild.build.tasks`), and their renders go to a pool of
worker processes, one per core: rendering is most of a full build's time, and the threads
that run the chart functions mostly wait for the workers. On 2 cores, a full build of
1,000 charts took 0.62x the one-thread build with two workers, against 0.71x with one
(``bench/scale.py``); the running builder's rebuild after one row changed 1.19 s against
1.64 s. The workers import
vl-convert and nothing of Django; they live as long as the process that started them,
so a long-lived ``doit auto`` keeps them warm, and has them practise first (see
:data:`PRACTICE`).

This module imports no Django at module level, as the workers import it.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from chartbuild.build import interrupts

_pool: ProcessPoolExecutor | None = None
_guard = threading.Lock()
#: Set once every worker has started its engine.
_ready = threading.Event()
#: Whether the workers of this process practise when they start (see :func:`start_workers`).
_practise = False
#: Whether this process (a worker, or a serial builder) drew the :data:`PRACTICE` charts.
_practised = False


def images(spec: dict[str, Any]) -> tuple[str, bytes]:
    """The SVG and PNG of a Vega-Lite spec (in a worker process when called from a worker
    thread); the PNG has the size of the SVG.

    A worker thread waits for the workers to start rather than render here meanwhile:
    vl-convert's first render in a process takes half a second and holds the GIL
    for much of it, which would slow the threads down and, on a small machine, the
    workers' own start as well.
    """
    if threading.current_thread() is threading.main_thread():
        return _images(spec)
    svg, png = _workers().submit(_images, spec).result()
    return svg, png


def _images(spec: dict[str, Any]) -> tuple[str, bytes]:
    import vl_convert

    svg = str(vl_convert.vegalite_to_svg(spec))
    return svg, bytes(vl_convert.svg_to_png(svg))


def _workers() -> ProcessPoolExecutor:
    global _pool
    with _guard:
        if _pool is None:
            # forkserver: the workers do not inherit this process's threads, locks and
            # database connections; its server imports only what rendering needs.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["chartbuild.build.render", "vl_convert"])
            workers = max(1, (os.cpu_count() or 1))
            _pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=_start_worker,
                initargs=(_practise,),
            )
            warming = [_pool.submit(_warm) for _ in range(workers)]

            def when_warm() -> None:
                for future in warming:
                    future.exception()  # waits; a failed start shows at the first render
                _ready.set()

            threading.Thread(target=when_warm, name="chartbuild-render-start", daemon=True).start()
            atexit.register(shutdown)
            interrupts.on_leave(shutdown)
        return _pool


def _start_worker(practise: bool = False) -> None:
    """In each worker: leave with the process that started it, then warm vl-convert up."""
    parent = multiprocessing.parent_process()
    if parent is not None:

        def leave_with_parent() -> None:
            parent.join()  # returns when the parent is gone, however it went
            os._exit(0)

        threading.Thread(target=leave_with_parent, daemon=True).start()
    _warm(practise)


def _warm(practise: bool = False) -> None:
    global _practised
    _images({"mark": "point", "data": {"values": [{}]}})
    if practise:
        for _ in range(PRACTICE_ROUNDS):
            for spec in PRACTICE:
                # Only practice: a chart it cannot draw must not fail the worker's start
                # (that would break the pool for every later build).
                with contextlib.suppress(Exception):
                    _images(spec)
        _practised = True


def _has_practised() -> bool:
    return _practised


def _practice() -> list[dict[str, Any]]:
    data = {
        "values": [
            {"kind": kind, "month": f"2024-{month:02d}-01", "n": (7 * month) % 11 + 1}
            for kind in "ab"
            for month in (1, 2, 3)
        ]
    }
    kind = {"field": "kind", "type": "nominal"}
    n = {"field": "n", "type": "quantitative"}
    month = {"field": "month", "type": "temporal"}
    return [
        {"data": data, "title": "Bars", "mark": "bar", "encoding": {"x": kind, "y": n}},
        {"data": data, "mark": "line", "encoding": {"x": month, "y": n, "color": kind}},
        {"data": data, "mark": "point", "encoding": {"x": n, "y": kind, "color": kind}},
        {"data": data, "mark": "arc", "encoding": {"theta": n, "color": kind}},
    ]


#: What a long-lived builder's renderer draws before its first chart. vl-convert's engine
#: compiles the code a kind of chart takes as it first draws it: on its first rebuild, a
#: watcher whose workers had drawn one point rendered its first bar charts at two to three
#: times their later cost, and took a fifth longer than its next rebuilds. Bars, lines,
#: points and arcs, with axes, legends and a title, fifteen rounds each (five left the
#: first rebuild about 0.1 s slower than the next), take about a second as the builder
#: starts: its first build may wait for them, no rebuild does.
PRACTICE = _practice()
PRACTICE_ROUNDS = 15


def warm_up(*, practise: bool = False) -> None:
    """Start vl-convert's engine here, so the first render is as fast as the next; with
    ``practise``, draw the :data:`PRACTICE` charts too (a long-lived builder)."""
    _warm(practise)


def start_workers(*, practise: bool = False) -> None:
    """Start the worker processes now, in the background: a build that is about to render
    in worker threads does not wait for their start at its first chart. With ``practise``
    (a long-lived builder), they draw the :data:`PRACTICE` charts as they start, from
    then on: workers already running are left as they are."""
    global _practise
    with _guard:
        _practise = _practise or practise
    _workers()


def shutdown() -> None:
    """Stop the worker processes (they are started again when needed). When the process
    was asked to stop (Ctrl-C, SIGTERM), end them now rather than let it wait on its way
    out for the charts they are drawing (or the practice of a builder that just started)."""
    global _pool
    with _guard:
        pool, _pool = _pool, None
        _ready.clear()
    if pool is None:
        return
    workers = list((getattr(pool, "_processes", None) or {}).values())  # shutdown drops them
    pool.shutdown(wait=False, cancel_futures=True)
    if interrupts.requested():
        for process in workers:
            with contextlib.suppress(Exception):
                process.kill()
