"""The order in which doit starts tasks: the slowest chart, the numbers, the other charts.

doit starts the tasks of a run in the order they are selected (on one thread), and keeps
the tasks that wait for one (the export, on several threads) in a set, which it starts
in that set's order when that one is done: the charts and numbers started in an order
that changed from one run to the next, or in the order they were declared, so the
slowest chart could start last, on a thread that had drawn others first, and the build
ended when it did. :func:`install` makes both start by cost: a task's cost is what
``meta["chartbuild.cost"]()`` returns (higher is slower; :data:`QUICK` for a task of a
few milliseconds). Tasks start in this order:

- the costliest first: a build lasts at least as long as its slowest task from the
  moment it starts, so one thread starts on it at once;
- then the quick ones (numbers: a query each), published within milliseconds on the
  other threads;
- then the rest, the costliest first, which keeps every thread busy to the end.

Tasks of equal cost start in the order the graph declares them; a task that states no
cost (the export, the pages, the manifest, a project's own tasks) keeps its place among
the selected ones. A cost is asked for only as a run starts its tasks, so ``doit list``
and ``doit info`` ask for none.

chartbuild's charts cost the seconds their last build took (``<state>/costs.json``, read
once per build), in powers of two (a never-built one costs most): on a busy machine,
times within a factor of two are noise, and charts that swapped places by it would each
be drawn last in turn, so charts of about the same cost start in the order they are
declared, which their author decides.

After one new order of the demo, its revenue chart (the first of three of about the
same cost) starts with the build, the four numbers beside it, then the other charts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from doit import control

#: The key of a task's ``meta`` that gives its cost: a function, called without arguments,
#: that returns a number (higher is slower).
COST = "chartbuild.cost"

#: The cost of a task that takes a few milliseconds (a number).
QUICK = -math.inf


def cost(task: Any) -> float | None:
    """The cost of doit task ``task`` (None if it states none)."""
    of = (task.meta or {}).get(COST)
    return of() if callable(of) else None


def _in_turn(members: list[Any], cost_of: Any) -> list[Any]:
    """``members`` in the order they start: the costliest, the quick ones, the rest from
    the costliest down (each in the order given among equals)."""
    if len(members) < 2:
        return list(members)
    found = [cost_of(member) for member in members]
    first = max(range(len(members)), key=lambda i: found[i])  # the first of the costliest
    rest = [i for i in range(len(members)) if i != first]
    quick = [i for i in rest if found[i] == QUICK]
    slow = sorted((i for i in rest if found[i] != QUICK), key=lambda i: -found[i])  # stable
    return [members[i] for i in [first, *quick, *slow]]


def by_cost(selected: list[str], tasks: dict[str, Any]) -> list[str]:
    """``selected`` with the tasks that state a cost in the places they take, in the order
    they start (those that state none stay where they are)."""
    found = {name: cost(tasks[name]) for name in selected if name in tasks}
    places = [i for i, name in enumerate(selected) if found.get(name) is not None]
    ordered = _in_turn([selected[i] for i in places], lambda name: found[name])
    result = list(selected)
    for place, name in zip(places, ordered, strict=True):
        result[place] = name
    return result


class _ByCost(dict[Any, None]):
    """A set of doit nodes (what doit asks of it) that iterates them in the order they
    start; those that state no cost keep their places."""

    def add(self, member: Any) -> None:
        self[member] = None

    def __iter__(self) -> Iterator[Any]:
        members = list(super().__iter__())
        if len(members) < 2:
            return iter(members)
        found = {id(m): cost(m.task) for m in members}
        stated = [m for m in members if found[id(m)] is not None]
        ordered = iter(_in_turn(stated, lambda node: found[id(node)]))
        return iter([next(ordered) if found[id(m)] is not None else m for m in members])


def install() -> None:
    """Make doit start the selected tasks, and the tasks one releases, by cost (once)."""
    node, dispatcher = control.ExecNode, control.TaskDispatcher
    if getattr(node, "_chartbuild_by_cost", False):
        return
    original_node, original_dispatcher = node.__init__, dispatcher.__init__

    def node_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_node(self, *args, **kwargs)
        self.waiting_me = _ByCost()

    def dispatcher_init(self: Any, tasks: Any, targets: Any, selected: Any) -> None:
        original_dispatcher(self, tasks, targets, by_cost(list(selected), tasks))

    node.__init__ = node_init  # type: ignore[method-assign]
    dispatcher.__init__ = dispatcher_init  # type: ignore[method-assign]
    node._chartbuild_by_cost = True  # type: ignore[attr-defined]
