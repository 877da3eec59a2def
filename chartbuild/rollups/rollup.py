"""A rollup's declaration (a base model, an optional filter, buckets and aggregates), and
its reader.

::

    from zoneinfo import ZoneInfo

    from django.db.models import Count, Q, Sum

    from chartbuild.periods import Month
    from chartbuild.rollups import Rollup

    revenue = Rollup(
        "shop_revenue",
        model=Order,
        filter=~Q(status="cancelled"),
        by={"month": Month("created_at", tzinfo=ZoneInfo("UTC")), "status": "status"},
        aggregates={"revenue": Sum("amount"), "orders": Count("id")},
    )

    @chart(models=[revenue])
    def monthly_revenue():
        rows = revenue.rows(order_by=["month"])
        ...

Buckets are the base model's own columns (by name) or expressions over them, such as
:mod:`chartbuild.periods`; a bucket of a ``DateTimeField`` fixes its time zone
(``tzinfo=``), since the database computes it for every writer, whatever its own zone.
Aggregates are ``Count``, ``Sum``, ``Avg``, ``Min`` and ``Max`` of one column (``Count``
also of ``"*"``), without ``distinct`` or ``filter``. The filter uses the base model's own
columns. A chart that lists a rollup in its ``models`` is rebuilt by the writes to the
rollup's base table.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import Avg, Count, F, Max, Min, Q, Sum
from django.db.models.expressions import Star

from chartbuild.declare.registry import model_label, resolve_model
from chartbuild.rollups import store
from chartbuild.rollups.sql import RollupError

#: The aggregates a rollup can keep.
AGGREGATES = (Count, Sum, Avg, Min, Max)
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_declared: dict[str, Rollup] = {}


class Rollup:
    """An aggregate of one model that the database keeps up to date as rows are written."""

    def __init__(
        self,
        name: str,
        *,
        model: Any,
        by: Mapping[str, Any],
        aggregates: Mapping[str, Any],
        filter: Q | None = None,
    ) -> None:
        if not NAME.match(name):
            raise RollupError(
                f"rollup name {name!r}: use lower-case letters, digits and _ (at most 40),"
                " starting with a letter"
            )
        if not aggregates:
            raise RollupError(f"rollup {name!r} declares no aggregate")
        clash = set(by) & set(aggregates)
        if clash:
            raise RollupError(f"rollup {name!r}: {sorted(clash)} are both bucket and aggregate")
        for column in [*by, *aggregates]:
            if not re.match(r"^[a-z][a-z0-9_]*$", column) or "__" in column:
                raise RollupError(
                    f"rollup {name!r}: column {column!r} must be lower-case letters, digits"
                    " and single underscores"
                )
        for label, aggregate in aggregates.items():
            if not isinstance(aggregate, AGGREGATES):
                raise RollupError(
                    f"rollup {name!r}: {label!r} is {aggregate!r}; use Count, Sum, Avg, Min or Max"
                )
            if getattr(aggregate, "distinct", False) or aggregate.filter is not None:
                raise RollupError(
                    f"rollup {name!r}: {label!r} uses distinct or filter, which a rollup"
                    " cannot keep from the change alone"
                )
            sources = aggregate.source_expressions
            if len(sources) != 1 or not isinstance(sources[0], F | Star):
                raise RollupError(f"rollup {name!r}: {label!r} must aggregate one column")
            if isinstance(sources[0], Star) and not isinstance(aggregate, Count):
                raise RollupError(f"rollup {name!r}: only Count can count '*'")
        self.name = name
        self._model = model
        self.by = dict(by)
        self.aggregates = dict(aggregates)
        self.filter = filter
        earlier = _declared.get(name)
        if earlier is not None and earlier.definition() != self.definition():
            raise RollupError(
                f"rollup {name!r} is declared twice, differently; give one of them another name"
            )
        _declared[name] = self

    def __repr__(self) -> str:
        return f"<Rollup {self.name} of {self.base_label}>"

    @property
    def model(self) -> Any:
        model = self._model
        return resolve_model(model_label(model)) if isinstance(model, str) else model

    @property
    def base_label(self) -> str:
        """The label of the base model: a chart reading the rollup depends on it."""
        return model_label(self._model)

    @property
    def keys(self) -> list[str]:
        return list(self.by)

    def bucket(self, name: str) -> Any:
        """The expression of bucket ``name`` (a column name becomes ``F(name)``)."""
        value = self.by[name]
        return F(value) if isinstance(value, str) else value

    def definition(self) -> str:
        """The declaration as text (its digest names the version the database keeps)."""
        parts = [
            f"model={self.base_label}",
            f"filter={self.filter!r}",
            *(f"by {k}={self.by[k]!r} tz={getattr(self.by[k], 'tzinfo', None)}" for k in self.by),
            *(f"aggregate {k}={self.aggregates[k]!r}" for k in self.aggregates),
        ]
        return "\n".join(parts)

    def digest(self) -> str:
        return hashlib.sha256(self.definition().encode()).hexdigest()[:16]

    def queryset(
        self,
        using: str | None = None,
        *,
        keys: Sequence[str] | None = None,
        equal: Mapping[str, Any] | None = None,
    ) -> Any:
        """The full ``GROUP BY`` query the rollup stands for (what ``verify`` compares), by
        ``keys`` (default: all its buckets), of the rows whose buckets are ``equal``."""
        manager = self.model._base_manager
        queryset = manager.using(using) if using else manager.all()
        if self.filter is not None:
            queryset = queryset.filter(self.filter)
        aliases = {f"cbk{i}": self.bucket(k) for i, k in enumerate(self.by)}
        names = {k: f"cbk{i}" for i, k in enumerate(self.by)}
        queryset = queryset.annotate(**aliases).filter(
            **{names[k]: v for k, v in (equal or {}).items() if v is not None},
            **{f"{names[k]}__isnull": True for k, v in (equal or {}).items() if v is None},
        )
        return (
            queryset.values(*(names[k] for k in (self.keys if keys is None else keys)))
            .annotate(**{f"cba{i}": a for i, a in enumerate(self.aggregates.values())})
            .order_by()
        )

    def rows(
        self,
        *,
        by: Sequence[str] | None = None,
        order_by: Sequence[str] = (),
        using: str | None = None,
        **equal: Any,
    ) -> list[dict[str, Any]]:
        """The rollup's rows, as dicts of buckets and aggregates: one per bucket that has
        rows, or, with ``by`` (some of its buckets), one per value of those, added up in
        the database (``by=[]``: one row of totals). ``equal`` keeps the rows whose
        buckets have those values; ``order_by`` sorts by buckets or aggregates
        (``"-name"`` for descending)."""
        return store.read(self, by=by, order_by=order_by, using=using, equal=equal)


def declared() -> list[Rollup]:
    """The rollups declared so far in this process (by the generators imported)."""
    return list(_declared.values())
