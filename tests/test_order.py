"""The order in which doit starts tasks (chartbuild.build.order)."""

from doit.control import ExecNode
from doit.task import Task

from chartbuild.build import order


def node(name, priority=None):
    meta = None if priority is None else {order.PRIORITY: priority}
    return ExecNode(Task(name, None, meta=meta), None)


def test_what_a_task_releases_starts_in_the_order_doit_added_it_without_priorities():
    order.install()
    export = node("export")
    waiting = [node(f"shop.chart_{i:02d}") for i in range(20)]
    for each in reversed(waiting):  # any order but the one of their addresses
        export.waiting_me.add(each)
    assert list(export.waiting_me) == list(reversed(waiting))


def test_what_a_task_releases_starts_by_priority_the_highest_first():
    order.install()
    export = node("export")
    priorities = {"a": (0, 0.01), "b": (0, 0.3), "n": (1, 0.0), "c": (0, float("inf"))}
    priorities |= {"d": (0, 0.3), "m": (1, 0.0)}
    for name, value in priorities.items():
        export.waiting_me.add(node(name, lambda value=value: value))
    export.waiting_me.add(node("g"))  # states none: keeps its place
    # numbers (1, ...) as added, the never-built chart, then the slowest (b, d as added)
    assert [n.task.name for n in export.waiting_me] == ["n", "m", "c", "b", "d", "a", "g"]


def test_a_task_released_alone_is_not_asked_its_priority():
    order.install()
    gen = node("gen:shop")

    def never():
        raise AssertionError("asked")

    gen.waiting_me.add(node("manifest", never))
    assert [n.task.name for n in gen.waiting_me] == ["manifest"]


def test_the_selected_tasks_start_by_priority_around_those_without_one():
    priorities = {"users.total": (1, 0.0), "shop.revenue": (0, 0.2), "shop.new": (0, 9e9)}
    priorities |= {"shop.orders": (0, 0.05)}
    tasks = {
        name: Task(name, None, meta={order.PRIORITY: lambda p=p: p})
        for name, p in priorities.items()
    }
    tasks.update({name: Task(name, None) for name in ("export", "gen:shop", "manifest")})
    tasks["export"].meta = {"priority": 5}  # a project's own meta: not chartbuild's
    selected = ["export", "shop.orders", "shop.revenue", "users.total", "shop.new"]
    selected += ["gen:shop", "manifest"]
    assert order.by_priority(selected, tasks) == [
        "export",
        "users.total",
        "shop.new",
        "shop.revenue",
        "shop.orders",
        "gen:shop",
        "manifest",
    ]


def test_installing_twice_wraps_once():
    order.install()
    first = ExecNode.__init__
    order.install()
    assert ExecNode.__init__ is first
