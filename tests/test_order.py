"""The order in which doit starts the tasks a finished task releases."""

from doit.control import ExecNode
from doit.task import Task

from chartbuild.build import order


def test_what_a_task_releases_starts_in_the_order_doit_added_it():
    order.install()
    export = ExecNode(Task("export", None), None)
    waiting = [ExecNode(Task(f"shop.chart_{i:02d}", None), None) for i in range(20)]
    for node in reversed(waiting):  # any order but the one of their addresses
        export.waiting_me.add(node)
    assert list(export.waiting_me) == list(reversed(waiting))


def node(name, cost=None):
    meta = None if cost is None else {order.COST: cost}
    return ExecNode(Task(name, None, meta=meta), None)


def test_what_a_task_releases_starts_the_costliest_then_the_cheapest_first():
    order.install()
    export = node("export")
    costs = {"a": 0.01, "b": 0.3, "c": None, "d": 0.3, "e": 0.05}
    for name, seconds in costs.items():
        export.waiting_me.add(node(name, lambda seconds=seconds: seconds))
    export.waiting_me.add(node("f"))  # states no cost: as a cost of 0
    # c was never built: it may be the slowest; then b and d cost as much: as added
    assert [n.task.name for n in export.waiting_me] == ["c", "f", "a", "e", "b", "d"]


def test_a_task_released_alone_is_not_asked_its_cost():
    order.install()
    gen = node("gen:shop")

    def never():
        raise AssertionError("asked")

    gen.waiting_me.add(node("manifest", never))
    assert [n.task.name for n in gen.waiting_me] == ["manifest"]


def test_installing_twice_wraps_once():
    order.install()
    first = ExecNode.__init__
    order.install()
    assert ExecNode.__init__ is first


def test_the_selected_tasks_start_by_cost_around_those_without_a_cost():
    costs = {"users.total": 0.01, "shop.revenue": 0.2, "shop.new": None, "shop.count": 0.01}
    tasks = {name: Task(name, None, meta={order.COST: lambda s=s: s}) for name, s in costs.items()}
    tasks.update({name: Task(name, None) for name in ("export", "gen:shop", "manifest")})
    tasks["export"].meta = {"cost": 5}  # a project's own meta: not chartbuild's
    selected = ["export", "users.total", "shop.count", "shop.revenue", "shop.new"]
    selected += ["gen:shop", "manifest"]
    assert order.by_cost(selected, tasks) == [
        "export",
        "shop.new",
        "users.total",
        "shop.count",
        "shop.revenue",
        "gen:shop",
        "manifest",
    ]
