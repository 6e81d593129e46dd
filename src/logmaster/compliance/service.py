"""The compliance service: the daily sealer, the violation evaluator and the alert dispatcher.

One process runs all three (``logmaster run`` starts it as a child; ``logmaster seal --follow``
runs it on its own): the sealer seals each device-day after its local midnight and retries
pending stamps (``archive/sealer.py``), the evaluator keeps the violations table in step with
the archive every ``compliance.interval_s`` (``evaluator.py``), and the dispatcher sends each
opened or resolved violation by webhook, e-mail and syslog (``alerts.py``). Their counters,
the TSA client's and the seal state (:class:`SealMetrics`) are served on
``compliance.metrics_listen``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from logmaster.compliance.evaluator import Evaluator
from logmaster.config import Settings
from logmaster.endpoints import parse_endpoint

log = logging.getLogger(__name__)


class _Registry(Collector):
    """Another registry's metrics (the alert counters live in a registry of their own)."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner

    def collect(self) -> Iterator[Metric]:
        yield from self.inner.collect()


class SealMetrics(Collector):
    """The seal state the alerts watch: overdue device-days and stamps waiting in the queue.

    ``logmaster_seal_overdue_device_days`` is the evaluator's count from its last pass (every
    ``compliance.interval_s``; absent before the first): device-days of the last
    ``compliance.window_days`` whose local day ended ``seal.delay_s`` ago (the sealer's own
    deadline) and that have lines but no manifest, or belong to an approved device and have
    neither a day file nor a declared silence. ``logmaster_seal_pending_stamps`` counts the
    stamp queue (``<data>/seal/pending``) at scrape time: one entry per manifest (per daily
    list in stamp mode daily) whose token is still missing.
    """

    def __init__(self, settings: Settings, evaluator: Evaluator) -> None:
        self.settings = settings
        self.evaluator = evaluator

    def collect(self) -> Iterator[Metric]:
        from logmaster.archive.stamps import pending_stamps

        overdue = self.evaluator.overdue_days
        if overdue is not None:
            yield GaugeMetricFamily(
                "logmaster_seal_overdue_device_days",
                "Device-days due for sealing (day over + seal.delay_s) without a manifest.",
                value=overdue,
            )
        waiting = [
            p for p in pending_stamps(self.settings) if p.target.exists() and not p.tsr.exists()
        ]
        yield GaugeMetricFamily(
            "logmaster_seal_pending_stamps",
            "Seals (manifests or daily lists) queued for an RFC 3161 timestamp.",
            value=len(waiting),
        )


def serve_metrics(listen: str, *extra: Collector) -> int:
    """/metrics with the stamp and alert counters of this process (and ``extra``); the port
    it listens on."""
    from logmaster.archive.tsa import TSA_METRICS
    from logmaster.compliance.alerts import ALERT_REGISTRY

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(TSA_METRICS)
    registry.register(_Registry(ALERT_REGISTRY))
    for collector in extra:
        registry.register(collector)
    ep = parse_endpoint(listen)
    server, _ = start_http_server(ep.port, ep.host, registry=registry)
    return int(server.server_port)


def run(settings: Settings, stop: threading.Event) -> None:
    """Seal, evaluate and alert until ``stop`` is set."""
    from logmaster.archive.sealer import Sealer
    from logmaster.compliance.alerts import Dispatcher
    from logmaster.db import make_engine, migrate

    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    dispatcher = Dispatcher(settings, engine)
    evaluator = Evaluator(settings, engine, dispatcher=dispatcher)
    if settings.compliance.metrics_listen:
        try:
            serve_metrics(settings.compliance.metrics_listen, SealMetrics(settings, evaluator))
        except OSError as exc:  # sealing matters more than its counters: go on without them
            log.error(
                "Cannot serve the sealer's /metrics; sealing anyway.",
                extra={"listen": settings.compliance.metrics_listen, "error": str(exc)},
            )
    dispatcher.start()
    threads = [
        threading.Thread(target=Sealer(settings).run, args=(stop,), name="sealer"),
        threading.Thread(target=evaluator.run, args=(stop,), name="compliance-evaluator"),
    ]
    for thread in threads:
        thread.start()
    log.info("Sealer and compliance evaluator running.")
    for thread in threads:
        thread.join()
    evaluator.close()
    dispatcher.stop()
    engine.dispose()
