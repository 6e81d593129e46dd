"""Counters of the collector and the archive writer, exported in Prometheus format.

Hot paths increment plain attributes (a prometheus-client ``Counter.labels().inc()`` costs more
than receiving the message); a custom collector turns them into metric families when
``/metrics`` is scraped. Receiver processes (``--workers N``) send snapshots of their listener
counters to the archive process, which sums them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(slots=True)
class DeviceStats:
    received: int = 0
    bytes: int = 0
    truncated: int = 0
    rejected: int = 0


@dataclass(slots=True)
class ListenerStats:
    name: str  # "udp://0.0.0.0:514"
    received: int = 0
    bytes: int = 0
    truncated: int = 0
    framing_errors: int = 0
    connections: int = 0
    open_connections: int = 0
    refused: int = 0
    kernel_drops: int = 0
    proxy_refused: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)


def merge(snapshots: Iterable[dict[str, Any]]) -> list[ListenerStats]:
    """Sum listener snapshots of several processes by listener name."""
    out: dict[str, ListenerStats] = {}
    for snap in snapshots:
        name = snap["name"]
        total = out.setdefault(name, ListenerStats(name))
        for key, value in snap.items():
            if key in ("name", "extra"):
                continue
            setattr(total, key, getattr(total, key) + value)
    return list(out.values())


_LISTENER_COUNTERS = {
    "received": "Messages received",
    "bytes": "Message bytes received",
    "truncated": "Messages longer than max_message_bytes, truncated and marked",
    "framing_errors": "Malformed frames: bad octet counts, incomplete frames, empty datagrams",
    "connections": "TCP/TLS connections accepted",
    "refused": "TCP/TLS connections refused (over max_connections or failed TLS handshakes)",
    "kernel_drops": "UDP datagrams the kernel dropped because the socket buffer was full",
    "proxy_refused": "TCP connections refused for a PROXY protocol header from an untrusted "
    "address, a missing or a malformed one",
}


class CollectorMetrics(Collector):
    """Reads the live counters at scrape time."""

    def __init__(
        self,
        devices: Callable[[], dict[str, DeviceStats]],
        listeners: Callable[[], list[ListenerStats]],
        archive: Callable[[], dict[str, Any]],
    ) -> None:
        self._devices = devices
        self._listeners = listeners
        self._archive = archive

    def collect(self) -> Iterator[Metric]:
        listeners = self._listeners()
        for key, text in _LISTENER_COUNTERS.items():
            fam = CounterMetricFamily(f"logmaster_listener_{key}", text, labels=["listener"])
            for st in listeners:
                fam.add_metric([st.name], getattr(st, key))
            yield fam
        gauge = GaugeMetricFamily(
            "logmaster_listener_open_connections",
            "TCP/TLS connections open now",
            labels=["listener"],
        )
        for st in listeners:
            gauge.add_metric([st.name], st.open_connections)
        yield gauge

        devices = self._devices()
        for key, text in (
            ("received", "Messages archived for the device"),
            ("bytes", "Message bytes archived for the device"),
            ("truncated", "Messages of the device truncated to max_message_bytes"),
            ("rejected", "Messages of a rejected device, not archived"),
        ):
            fam = CounterMetricFamily(f"logmaster_device_{key}", text, labels=["device"])
            for slug, ds in devices.items():
                fam.add_metric([slug], getattr(ds, key))
            yield fam

        arch = self._archive()
        yield CounterMetricFamily(
            "logmaster_archive_lines", "Lines written to day files", value=arch["lines"]
        )
        yield CounterMetricFamily(
            "logmaster_archive_bytes", "Bytes written to day files", value=arch["bytes"]
        )
        errors = CounterMetricFamily(
            "logmaster_archive_write_errors",
            "Failed archive writes (lines kept and retried)",
            labels=["reason"],
        )
        for reason, count in arch["write_errors"].items():
            errors.add_metric([reason], count)
        yield errors
        yield CounterMetricFamily(
            "logmaster_archive_torn_bytes_cut",
            "Bytes of torn last lines cut at recovery",
            value=arch["torn_bytes_cut"],
        )
        yield CounterMetricFamily(
            "logmaster_archive_chain_resyncs",
            "Day files whose chain had to be recomputed from the start",
            value=arch["resyncs"],
        )
        yield GaugeMetricFamily(
            "logmaster_archive_buffered_bytes",
            "Bytes received but not yet written to the archive",
            value=arch["buffered_bytes"],
        )
        yield GaugeMetricFamily(
            "logmaster_archive_open_files", "Day files open", value=arch["open_files"]
        )
        yield GaugeMetricFamily(
            "logmaster_archive_writable",
            "1 when the last flush succeeded, 0 while writes fail",
            value=0 if arch["failing"] else 1,
        )
        yield CounterMetricFamily(
            "logmaster_archive_unregistered_lines",
            "Lines of unknown senders past max_pending_devices, archived "
            "under the device 'unregistered'",
            value=arch["unregistered"],
        )
