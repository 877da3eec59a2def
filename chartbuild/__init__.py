"""chartbuild: Django charts and key numbers as make-style targets of model changes.

Declare charts and numbers in a generator module with :func:`chart` and :func:`number`;
``chartbuild.tasks`` gives doit the task graph; ``chartbuild.runner.build`` runs it from
Python.
"""

from chartbuild.exceptions import (
    BuildFailed,
    ChartbuildError,
    ChartError,
    ExportError,
    GeneratorError,
    LockTimeout,
    OutputError,
)
from chartbuild.registry import chart, number

__all__ = [
    "BuildFailed",
    "ChartError",
    "ChartbuildError",
    "ExportError",
    "GeneratorError",
    "LockTimeout",
    "OutputError",
    "chart",
    "number",
]
