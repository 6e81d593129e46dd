"""The indexer's /metrics: lines indexed, parse failures per device, batches, lag."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from logmaster.endpoints import parse_endpoint

if TYPE_CHECKING:
    from logmaster.index.indexer import IndexerStats


class HasStats(Protocol):
    """An indexer, or a group of indexer processes (``index/workers.py``)."""

    @property
    def stats(self) -> IndexerStats: ...


class IndexerMetrics(Collector):
    def __init__(self, indexer: HasStats) -> None:
        self.indexer = indexer

    def collect(self) -> Iterator[Metric]:
        st = self.indexer.stats
        yield CounterMetricFamily("logmaster_index_lines", "Archive lines indexed", value=st.lines)
        yield CounterMetricFamily("logmaster_index_batches", "Batches committed", value=st.batches)
        yield CounterMetricFamily(
            "logmaster_index_retries",
            "Index writes that failed (database unreachable) and were retried",
            value=st.retries,
        )
        fam = CounterMetricFamily(
            "logmaster_index_parse_failures",
            "Lines no parser understood (indexed as raw text)",
            labels=["device"],
        )
        for device, n in sorted(st.failures.items()):
            fam.add_metric([device], n)
        yield fam
        # Caught up means no lag, however old the newest line is.
        lag = time.time() - st.newest_received if st.bytes_behind and st.newest_received else 0.0
        yield GaugeMetricFamily(
            "logmaster_index_lag_seconds",
            "Age of the newest indexed line's receive time",
            value=lag,
        )
        yield GaugeMetricFamily(
            "logmaster_index_bytes_behind",
            "Archive bytes written but not yet indexed",
            value=st.bytes_behind,
        )


def serve_metrics(indexer: HasStats, listen: str) -> int:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(IndexerMetrics(indexer))
    ep = parse_endpoint(listen)
    server, _ = start_http_server(ep.port, ep.host, registry=registry)
    return int(server.server_port)
