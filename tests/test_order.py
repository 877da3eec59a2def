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


def test_installing_twice_wraps_once():
    order.install()
    first = ExecNode.__init__
    order.install()
    assert ExecNode.__init__ is first
