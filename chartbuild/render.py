"""Rendering Vega-Lite specs to SVG with vl-convert: here, or in worker processes.

A serial build renders in its own process. A parallel build runs its tasks in threads
(doit's ``-P thread``, see :mod:`chartbuild.tasks`), and their renders go to a pool of
worker processes, one per core but one: rendering is most of a full build's time, and
worker processes keep it off the threads that run the chart functions, which share one
core between them (Python runs one thread at a time). The workers import
vl-convert and nothing of Django; they live as long as the process that started them,
so a long-lived ``doit auto`` keeps them warm.

This module imports no Django at module level, as the workers import it.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_pool: ProcessPoolExecutor | None = None
_guard = threading.Lock()
#: Set once every worker has started its engine.
_ready = threading.Event()


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
            context.set_forkserver_preload(["chartbuild.render", "vl_convert"])
            workers = max(1, (os.cpu_count() or 1) - 1)
            _pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_start_worker
            )
            warming = [_pool.submit(_warm) for _ in range(workers)]

            def when_warm() -> None:
                for future in warming:
                    future.exception()  # waits; a failed start shows at the first render
                _ready.set()

            threading.Thread(target=when_warm, name="chartbuild-render-start", daemon=True).start()
            atexit.register(shutdown)
        return _pool


def _start_worker() -> None:
    """In each worker: leave with the process that started it, then warm vl-convert up."""
    parent = multiprocessing.parent_process()
    if parent is not None:

        def leave_with_parent() -> None:
            parent.join()  # returns when the parent is gone, however it went
            os._exit(0)

        threading.Thread(target=leave_with_parent, daemon=True).start()
    _warm()


def _warm() -> None:
    _images({"mark": "point", "data": {"values": [{}]}})


def warm_up() -> None:
    """Start vl-convert's engine here, so the first render is as fast as the next."""
    _warm()


def start_workers() -> None:
    """Start the worker processes now, in the background: a build that is about to render
    in worker threads does not wait for their start at its first chart."""
    _workers()


def shutdown() -> None:
    """Stop the worker processes (they are started again when needed)."""
    global _pool
    with _guard:
        pool, _pool = _pool, None
        _ready.clear()
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
