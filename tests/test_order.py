"""The order in which doit starts tasks (chartbuild.build.order)."""

import math

from doit.control import ExecNode
from doit.task import Task

from chartbuild.build import order


def node(name, cost=None):
    meta = None if cost is None else {order.COST: cost}
    return ExecNode(Task(name, None, meta=meta), None)


def test_what_a_task_releases_starts_in_the_order_doit_added_it_without_costs():
    order.install()
    export = node("export")
    waiting = [node(f"shop.chart_{i:02d}") for i in range(20)]
    for each in reversed(waiting):  # any order but the one of their addresses
        export.waiting_me.add(each)
    assert list(export.waiting_me) == list(reversed(waiting))


def test_what_a_task_releases_starts_the_costliest_then_the_quick_then_the_rest():
    order.install()
    export = node("export")
    costs = {"a": -5.0, "b": -3.0, "n": order.QUICK, "c": -3.0, "d": -2.0, "m": order.QUICK}
    for name, value in costs.items():
        export.waiting_me.add(node(name, lambda value=value: value))
    export.waiting_me.add(node("g"))  # states none: keeps its place
    assert [n.task.name for n in export.waiting_me] == ["d", "n", "m", "b", "c", "a", "g"]


def test_a_never_built_task_starts_first():
    order.install()
    export = node("export")
    for name, value in {"a": -3.0, "new": math.inf, "n": order.QUICK}.items():
        export.waiting_me.add(node(name, lambda value=value: value))
    assert [n.task.name for n in export.waiting_me] == ["new", "n", "a"]


def test_a_task_released_alone_is_not_asked_its_cost():
    order.install()
    gen = node("gen:shop")

    def never():
        raise AssertionError("asked")

    gen.waiting_me.add(node("manifest", never))
    assert [n.task.name for n in gen.waiting_me] == ["manifest"]


def test_the_selected_tasks_start_by_cost_around_those_without_one():
    costs = {"users.total": order.QUICK, "shop.revenue": -3.0, "shop.orders": -5.0}
    costs |= {"shop.status": -3.0}
    tasks = {name: Task(name, None, meta={order.COST: lambda c=c: c}) for name, c in costs.items()}
    tasks.update({name: Task(name, None) for name in ("export", "gen:shop", "manifest")})
    tasks["export"].meta = {"cost": 5}  # a project's own meta: not chartbuild's
    selected = ["export", "shop.orders", "shop.revenue", "users.total", "shop.status"]
    selected += ["gen:shop", "manifest"]
    assert order.by_cost(selected, tasks) == [
        "export",
        "shop.revenue",
        "users.total",
        "shop.status",
        "shop.orders",
        "gen:shop",
        "manifest",
    ]


def test_installing_twice_wraps_once():
    order.install()
    first = ExecNode.__init__
    order.install()
    assert ExecNode.__init__ is first
