"""chartbuild: charts as make targets of Django model changes."""

from chartbuild.registry import chart, number

__all__ = ["chart", "number"]
