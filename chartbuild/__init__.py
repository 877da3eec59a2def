"""chartbuild: Django charts and key numbers as make-style targets of model changes.

Declare charts and numbers in a generator module with :func:`chart` and :func:`number`;
``chartbuild.tasks`` gives doit the task graph; ``chartbuild.build.runner.build`` runs it from
Python.
"""

from chartbuild.declare.registry import chart, number
from chartbuild.declare.trend import Trend
from chartbuild.exceptions import (
    BuildFailed,
    ChartbuildError,
    ChartError,
    ExportError,
    GeneratorError,
    LockTimeout,
    OutputError,
)

__all__ = [
    "BuildFailed",
    "ChartError",
    "ChartbuildError",
    "ExportError",
    "GeneratorError",
    "LockTimeout",
    "OutputError",
    "Trend",
    "chart",
    "number",
    "writes_by",
]


def __getattr__(name: str) -> object:
    # imported when asked for: it needs Django's apps loaded, this package does not
    if name == "writes_by":
        from chartbuild.capture.context import writes_by

        return writes_by
    raise AttributeError(f"module 'chartbuild' has no attribute {name!r}")
