"""Names: which a generator, chart or number may take, and the doit task of each.

A leaf: the catalog checks names against these, the checks describe them, the site routes
by them, the task graph and its reporters name tasks with them.
"""

from __future__ import annotations

import re

#: A generator, chart or number name: a safe file name and URL part.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*", re.ASCII)
#: The folder of the pages' scripts in the output directory.
STATIC = "static"
#: Names an output of the site already uses: a chart or number may not take them.
RESERVED_NAMES = ("index", "manifest", "state", STATIC, "version")
#: Names a generator may not take, and what already has them.
RESERVED_GENERATORS = {
    STATIC: "the folder of the pages' scripts",
    "login": "the site's sign-in page",
    "logout": "the site's sign-out address",
    "metrics": "the site's Prometheus metrics",
}


def task_name(generator: str, name: str) -> str:
    """The doit task that builds chart or number ``name`` of ``generator``."""
    return f"{generator}.{name}"


def is_chart_task(task: str) -> bool:
    """Whether doit task ``task`` builds a chart or number (``<generator>.<name>``)."""
    return "." in task and ":" not in task
