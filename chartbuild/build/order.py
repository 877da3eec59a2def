"""The order in which doit starts tasks: numbers first, then the slowest charts first.

doit starts the tasks of a run in the order they are selected (on one thread), and keeps
the tasks that wait for one (the export, on several threads) in a set, which it starts
in that set's order when that one is done: the charts and numbers started in an order
that changed from one run to the next, or in the order they were declared, so the
slowest chart could start last, on a thread that had drawn others first, and the build
ended when it did. :func:`install` makes both start by priority, highest first: a task's
priority is what ``meta["chartbuild.priority"]()`` returns. Tasks of equal priority start
in the order the graph declares them; a task that states none (the export, the pages,
the manifest, a project's own tasks) keeps its place among the selected ones. A priority
is asked for only as a run starts its tasks, so ``doit list`` and ``doit info`` ask for
none.

chartbuild's charts and numbers (:mod:`chartbuild.build.tasks`) give:

- numbers first: a query each, they are published within milliseconds, and the few of a
  rebuild delay the charts by as little;
- then the charts, the slowest first by the seconds their last build took (a
  never-built one first of all): a build lasts at least as long as its slowest chart
  from the moment it starts, and starting the longest first keeps every thread busy to
  the end;
- charts whose last builds took within the same power of two of seconds (30 and 50 ms,
  say) in the order they are declared: on a busy machine such times are noise, and
  charts that swapped places from one build to the next by it would each be drawn last
  in turn. A generator's author decides which of its charts of about the same cost comes
  first.

After one new order of the demo, the revenue chart (its first chart) starts as soon as
the four numbers are done, and the bar charts of about its cost after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from doit import control

#: The key of a task's ``meta`` that gives its priority: a function, called without
#: arguments, returning something comparable (a number or a tuple of numbers).
PRIORITY = "chartbuild.priority"


def priority(task: Any) -> Any:
    """The priority of doit task ``task`` (None if it states none)."""
    of = (task.meta or {}).get(PRIORITY)
    return of() if callable(of) else None


def _in_turn(members: list[Any], priority_of: Any) -> list[Any]:
    """``members`` in the order they start: the highest priority first, stable."""
    if len(members) < 2:
        return list(members)
    found = [priority_of(member) for member in members]
    order = sorted(range(len(members)), key=lambda i: found[i], reverse=True)  # stable
    return [members[i] for i in order]


def by_priority(selected: list[str], tasks: dict[str, Any]) -> list[str]:
    """``selected`` with the tasks that state a priority in the places they take, in the
    order they start (those that state none stay where they are)."""
    found = {name: priority(tasks[name]) for name in selected if name in tasks}
    places = [i for i, name in enumerate(selected) if found.get(name) is not None]
    ordered = _in_turn([selected[i] for i in places], lambda name: found[name])
    result = list(selected)
    for place, name in zip(places, ordered, strict=True):
        result[place] = name
    return result


class _ByPriority(dict[Any, None]):
    """A set of doit nodes (what doit asks of it) that iterates them in the order they
    start; among those that state no priority, in the order they were added."""

    def add(self, member: Any) -> None:
        self[member] = None

    def __iter__(self) -> Iterator[Any]:
        members = list(super().__iter__())
        if len(members) < 2:
            return iter(members)
        found = {id(m): priority(m.task) for m in members}
        stated = [m for m in members if found[id(m)] is not None]
        ordered = iter(_in_turn(stated, lambda node: found[id(node)]))
        return iter([next(ordered) if found[id(m)] is not None else m for m in members])


def install() -> None:
    """Make doit start the selected tasks, and the tasks one releases, by priority (once)."""
    node, dispatcher = control.ExecNode, control.TaskDispatcher
    if getattr(node, "_chartbuild_by_priority", False):
        return
    original_node, original_dispatcher = node.__init__, dispatcher.__init__

    def node_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_node(self, *args, **kwargs)
        self.waiting_me = _ByPriority()

    def dispatcher_init(self: Any, tasks: Any, targets: Any, selected: Any) -> None:
        original_dispatcher(self, tasks, targets, by_priority(list(selected), tasks))

    node.__init__ = node_init  # type: ignore[method-assign]
    dispatcher.__init__ = dispatcher_init  # type: ignore[method-assign]
    node._chartbuild_by_priority = True  # type: ignore[attr-defined]
