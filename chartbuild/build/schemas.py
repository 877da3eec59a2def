"""Altair's table of schema classes, made once per process instead of at every channel.

Each ``encode(x="month:T")`` of an Altair chart turns its shorthand into a channel object
through ``SchemaBase.from_dict``, which builds a table of every schema class of Vega-Lite
(about 570) keyed by a hash of its JSON schema, then looks one class up. Altair (up to
6.3 at least) builds that table afresh at every call: on a chart of two channels that is
3 ms of its 4 ms, most of what a chart function costs besides its queries. The table
depends only on the classes, which Altair defines as it is imported, so :func:`install`
keeps it, one per set of classes: the same charts, made about four times faster
(``bench/scale.py`` prints what the chart functions take).

This changes nothing Altair computes. If a later Altair no longer has the class this
works on, :func:`install` does nothing. A build installs it before its first chart
function runs (:func:`chartbuild.build.actions.make`); it imports Altair only then, so a
build with no chart to make never imports it.
"""

from __future__ import annotations

import threading
from typing import Any

_installed = False
_guard = threading.Lock()


def install() -> bool:
    """Keep Altair's table of schema classes once made (once per process); whether it is
    kept (False: this Altair has no such table)."""
    global _installed
    if _installed:
        return True
    with _guard:
        if _installed:
            return True
        try:
            from altair.utils import schemapi
        except ImportError:  # a project with no Altair at all draws only Vega-Lite dicts
            return False
        converter = getattr(schemapi, "_FromDict", None)
        made = getattr(converter, "__init__", None)
        if converter is None or made is None:
            return False
        tables: dict[tuple[Any, ...], Any] = {}

        def __init__(self: Any, wrapper_classes: Any, /) -> None:
            classes = tuple(wrapper_classes)
            table = tables.get(classes)
            if table is None:
                made(self, classes)
                table = tables.setdefault(classes, self.class_dict)
            self.class_dict = table

        converter.__init__ = __init__
        _installed = True
        return True
