"""The collector as a running service: database, registry, archive thread, receivers, metrics.

``Collector(settings).start()`` returns once every listener is bound (raising if one cannot be),
so callers and tests can send right away; ``stop()`` writes everything received before it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import resource
import socket
import threading
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.process_collector import ProcessCollector

from logmaster.archive.writer import ArchiveWriter
from logmaster.collector.daycounters import DayCounters
from logmaster.collector.devices import Registry
from logmaster.collector.feed import open_feed
from logmaster.collector.ingest import Ingest
from logmaster.collector.receivers import Receivers
from logmaster.collector.stats import CollectorMetrics, ListenerStats
from logmaster.collector.workers import WorkerPool
from logmaster.config import Settings
from logmaster.db import make_engine, migrate
from logmaster.endpoints import parse_endpoint

log = logging.getLogger(__name__)


def raise_open_files_limit() -> int:
    """Thousands of connections and day files need more than the usual 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def check_ports_free(settings: Settings) -> None:
    """Fail if another process listens on one of our ports.

    Our sockets use SO_REUSEPORT (for --workers), which would otherwise let a second collector
    bind the same port silently and take part of the traffic. A probe bound *without* it fails
    with EADDRINUSE if anyone holds the port.
    """
    c = settings.collector
    tls = c.tls if (c.tls_cert or c.tls_key) else []
    for kind, specs in ((socket.SOCK_DGRAM, c.udp), (socket.SOCK_STREAM, [*c.tcp, *tls])):
        for spec in specs:
            ep = parse_endpoint(spec)
            if ep.port == 0:
                continue
            with socket.socket(ep.family, kind) as probe:
                if ep.family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if kind == socket.SOCK_STREAM:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((ep.host, ep.port))
                except OSError as exc:
                    name = "udp" if kind == socket.SOCK_DGRAM else "tcp"
                    raise OSError(exc.errno, f"{name} {spec}: {exc.strerror}") from exc


class Collector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.receivers: Receivers | None = None
        self.pool: WorkerPool | None = None
        self.metrics_server: Any = None
        self.metrics_port: int | None = None
        self.endpoints: list[str] = []

    def start(self) -> None:
        s = self.settings
        self._lock_data_dir()
        check_ports_free(s)
        raise_open_files_limit()
        migrate(s.db_url)
        self.engine = make_engine(s.db_url)
        self.registry = Registry(
            self.engine,
            s.devices.default_timezone,
            s.collector.max_pending_devices,
            node=s.cluster.node,
        )
        self.writer = ArchiveWriter(s.archive_dir, s.archive.fsync, s.archive.max_open_files)
        self.feed = open_feed(s.data_dir, s.redis_url, s.tail.feed_buffer_bytes)
        self.feed.start()
        self.writer.feed = self.feed
        self.ingest = Ingest(
            self.registry,
            self.writer,
            flush_interval_ms=s.archive.flush_interval_ms,
            buffer_max_bytes=s.collector.buffer_max_bytes,
            fsync_each_message=s.archive.fsync == "message",
        )
        self.ingest.periodic.append(
            DayCounters(s.archive_dir, s.devices.default_timezone, lambda: self.listener_stats)
        )
        self.ingest.start()
        try:
            if s.collector.workers == 1:
                self.receivers = Receivers(s.collector, self.ingest)
                self.receivers.start()
                self.endpoints = self.receivers.endpoints
            else:
                self.pool = WorkerPool(s.collector, s.collector.workers, self.ingest, s.log_level)
                self.pool.start()
                self.endpoints = self.pool.endpoints
                self.ingest.periodic.append(self.pool.supervise)
            self._start_metrics()
        except BaseException:
            self.stop()
            raise
        log.info(
            "Collector listening.",
            extra={
                "listeners": " ".join(self.endpoints),
                "archive": str(s.archive_dir),
                "workers": s.collector.workers,
                "metrics": f"http://{s.metrics.listen}/metrics" if s.metrics.listen else "off",
            },
        )

    def _lock_data_dir(self) -> None:
        """One collector per data directory: two writers would fork every hash chain."""
        self.settings.data_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        path = self.settings.data_dir / "collector.lock"
        self._lock = open(path, "a+")  # noqa: SIM115 - held for the life of the collector
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise ValueError(
                f"another collector is running on {self.settings.data_dir} (it holds {path})"
            ) from exc
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()

    @property
    def listener_stats(self) -> list[ListenerStats]:
        if self.receivers is not None:
            return self.receivers.stats
        if self.pool is not None:
            return self.pool.stats
        return []

    def archive_stats(self) -> dict[str, Any]:
        w = self.writer
        return {
            "lines": w.stats.lines,
            "bytes": w.stats.bytes,
            "write_errors": dict(w.stats.write_errors),
            "torn_bytes_cut": w.stats.torn_bytes_cut,
            "resyncs": w.stats.resyncs,
            "buffered_bytes": w.pending_bytes + max(0, self.ingest.queued_bytes),
            "open_files": w.open_files,
            "failing": w.failing,
            "unregistered": self.registry.unregistered_lines,
        }

    def _start_metrics(self) -> None:
        listen = self.settings.metrics.listen
        if not listen:
            return
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        registry.register(
            CollectorMetrics(
                lambda: dict(self.registry.stats), lambda: self.listener_stats, self.archive_stats
            )
        )
        ep = parse_endpoint(listen)
        server, _thread = start_http_server(ep.port, ep.host, registry=registry)
        self.metrics_server = server
        self.metrics_port = server.server_port

    def stop(self) -> None:
        """Stop receiving, then write everything received."""
        if self.receivers is not None:
            self.receivers.stop()
        if self.pool is not None:
            self.pool.stop()
        self.ingest.stop()
        self.writer.close()
        self.feed.stop()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        log.info(
            "Collector stopped; every received line is written.",
            extra={"lines": self.writer.stats.lines},
        )
        self._lock.close()

    def serve_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            stop.wait(1.0)
        self.stop()
