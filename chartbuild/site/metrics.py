"""The Prometheus metrics of the charts (``metrics/``): how fresh each is, how its last
build went, and how many committed changes wait to be published.

Made afresh at each scrape from the database (:mod:`chartbuild.publish.freshness`) and
the build records, in Prometheus' text format, with ``prometheus-client``:

- ``chartbuild_lag_seconds{task, kind}``: how far behind its committed changes it is
  (absent for one never built);
- ``chartbuild_max_lag_seconds{task, level}``: its limits (``warn``, ``error``);
- ``chartbuild_freshness{task, status}``: 1 for its status (``pass``, ``warn``,
  ``error``), 0 for the others;
- ``chartbuild_build_duration_seconds{task}``: how long its last good build took;
- ``chartbuild_last_build_timestamp_seconds{task}``: when it was last built;
- ``chartbuild_build_failing{task}``: 1 while its builds fail (it keeps its last good
  outputs);
- ``chartbuild_pending_changes``: the change records no publication contains yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from chartbuild.publish import freshness
from chartbuild.site.items import Item

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Collector:
    def __init__(self, items: list[Item]) -> None:
        self.items = items

    def collect(self) -> Iterator[Metric]:
        found = freshness.pending()
        lag = GaugeMetricFamily(
            "chartbuild_lag_seconds",
            "Seconds its published output is behind its committed changes.",
            labels=["task", "kind"],
        )
        limit = GaugeMetricFamily(
            "chartbuild_max_lag_seconds", "Its freshness limits.", labels=["task", "level"]
        )
        status = GaugeMetricFamily(
            "chartbuild_freshness", "1 for its freshness status.", labels=["task", "status"]
        )
        took = GaugeMetricFamily(
            "chartbuild_build_duration_seconds",
            "How long its last good build took.",
            labels=["task"],
        )
        built = GaugeMetricFamily(
            "chartbuild_last_build_timestamp_seconds",
            "When it was last built (Unix time).",
            labels=["task"],
        )
        failing = GaugeMetricFamily(
            "chartbuild_build_failing", "1 while its builds fail.", labels=["task"]
        )
        for item in self.items:
            fresh = freshness.of(item.generator, item.declaration, item.record, found)
            task = item.task
            if fresh.lag is not None:
                lag.add_metric([task, item.kind], fresh.lag)
            if fresh.limit is not None:
                limit.add_metric([task, "warn"], fresh.limit[0])
                limit.add_metric([task, "error"], fresh.limit[1])
            for name in freshness.STATUSES:
                status.add_metric([task, name], float(fresh.status == name))
            if item.record.built_at:
                took.add_metric([task], item.record.seconds)
                built.add_metric([task], _unix(item.record.built_at))
            failing.add_metric([task], float(bool(item.record.error)))
        queue = GaugeMetricFamily(
            "chartbuild_pending_changes",
            "Change records committed that no publication contains yet.",
            value=found.count,
        )
        yield from (lag, limit, status, took, built, failing, queue)


def exposition(items: Iterable[Item]) -> bytes:
    """The metrics of ``items`` in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(list(items)))  # type: ignore[arg-type]
    return bytes(generate_latest(registry))


def _unix(moment: str) -> float:
    try:
        parsed: Any = dt.datetime.fromisoformat(moment)
    except ValueError:
        return 0.0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return float(parsed.timestamp())
