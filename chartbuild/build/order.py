"""The order in which doit starts the tasks one task releases: the order they are declared.

doit keeps, for each task, the tasks that wait for it in a set, and starts them in that
set's order when it is done: after the export of a build, the charts and numbers start in
an order that changes from one run to the next, so a chart declared first may be drawn
last. :func:`install` makes that collection keep the order in which doit added them, which
is the order the graph declares them (numbers first, then charts, in their generator's
order): a build draws a generator's first charts first, every time.
"""

from __future__ import annotations

from typing import Any

from doit import control


class _InOrder(dict[Any, None]):
    """A set that iterates in the order its members were added (what doit asks of it)."""

    def add(self, member: Any) -> None:
        self[member] = None


def install() -> None:
    """Make doit's task nodes keep the tasks that wait for them in order (once)."""
    node = control.ExecNode
    if getattr(node, "_chartbuild_in_order", False):
        return
    original = node.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.waiting_me = _InOrder()

    node.__init__ = __init__  # type: ignore[method-assign]
    node._chartbuild_in_order = True  # type: ignore[attr-defined]
