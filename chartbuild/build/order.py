"""The order in which doit starts tasks: the costliest first, then the cheapest first.

doit starts the tasks of a run in the order they are selected (on one thread), and keeps
the tasks that wait for one (the export, on several threads) in a set, which it starts
in that set's order when that one is done: the charts and numbers started in an order
that changed from one run to the next, or in the order they were declared, so the
slowest chart could start last, on a thread that had drawn others first, and the build
ended when it did. :func:`install` makes both start by cost: a task's cost is what
``meta["chartbuild.cost"]()`` returns (chartbuild's tasks give the seconds their last build took; a
never-built one costs more than any other). The costliest task starts first, then the
others from the cheapest up. Tasks of equal cost start in the order the graph declares
them; a task that states no cost (the export, the pages, the manifest) keeps its place
among the selected ones. A cost is asked for only as a run starts its tasks, so ``doit
list`` and ``doit info`` ask for none.

Why both: a build lasts at least as long as its slowest task from the moment it starts,
so that one goes first (after one new order of the demo, the revenue chart starts with
the build instead of after the numbers, and is on disk about 20 ms sooner); every other
output is published as soon as it is made, and the cheapest first publishes them soonest
on average (the demo's users number, drawn last after the six user charts when all went
costliest first, came 60 ms later on SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from doit import control

#: The key of a task's ``meta`` that gives its cost (a function, called without arguments).
COST = "chartbuild.cost"

#: The cost of a task that was never built: more than that of any task that was.
UNKNOWN = float("inf")


def cost(task: Any) -> float | None:
    """The cost of doit task ``task`` (None if it states none: a project's own tasks)."""
    estimate = (task.meta or {}).get(COST)
    if not callable(estimate):
        return None
    found = estimate()
    return UNKNOWN if found is None else float(found)


def _in_turn(members: list[Any], cost_of: Any) -> list[Any]:
    """``members`` as they start: the costliest, then the rest from the cheapest up."""
    if len(members) < 2:
        return list(members)
    costs = [cost_of(member) for member in members]
    first = max(range(len(members)), key=lambda i: costs[i])  # the first of the costliest
    rest = sorted((i for i in range(len(members)) if i != first), key=lambda i: costs[i])
    return [members[first], *(members[i] for i in rest)]  # sorted() is stable


def by_cost(selected: list[str], tasks: dict[str, Any]) -> list[str]:
    """``selected`` with the tasks that state a cost in the places they take, in the order
    they start (those that state none stay where they are)."""
    costs = {name: cost(tasks[name]) for name in selected if name in tasks}
    places = [i for i, name in enumerate(selected) if costs.get(name) is not None]
    ordered = _in_turn([selected[i] for i in places], lambda name: costs[name] or 0.0)
    result = list(selected)
    for place, name in zip(places, ordered, strict=True):
        result[place] = name
    return result


class _ByCost(dict[Any, None]):
    """A set of doit nodes (what doit asks of it) that iterates them in the order they
    start (:func:`_in_turn`; in the order they were added among equals)."""

    def add(self, member: Any) -> None:
        self[member] = None

    def __iter__(self) -> Iterator[Any]:
        return iter(_in_turn(list(super().__iter__()), lambda node: cost(node.task) or 0.0))


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
