"""Rollups: aggregates the database keeps up to date as rows are written.

A generator declares a :class:`Rollup` (a base model, an optional filter, buckets and
aggregates); its charts read it instead of aggregating the whole table again. How the
database keeps it: :mod:`chartbuild.rollups.store`.
"""

from chartbuild.rollups.rollup import Rollup

__all__ = ["Rollup"]
