"""The compliance service: the daily sealer, the violation evaluator and the alert dispatcher.

One process runs all three (``logmaster run`` starts it as a child; ``logmaster seal --follow``
runs it on its own): the sealer seals each device-day after its local midnight and retries
pending stamps (``archive/sealer.py``), the evaluator keeps the violations table in step with
the archive every ``compliance.interval_s`` (``violations.py``), and the dispatcher sends each
opened or resolved violation by webhook, e-mail and syslog (``alerts.py``). Their counters,
and the TSA client's, are served on ``compliance.metrics_listen``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from logmaster.config import Settings
from logmaster.endpoints import parse_endpoint

log = logging.getLogger(__name__)


class _Registry(Collector):
    """Another registry's metrics (the alert counters live in a registry of their own)."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner

    def collect(self) -> Iterator[Metric]:
        yield from self.inner.collect()


def serve_metrics(listen: str) -> int:
    """/metrics with the stamp and alert counters of this process; the port it listens on."""
    from logmaster.archive.tsa import TSA_METRICS
    from logmaster.compliance.alerts import ALERT_REGISTRY

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(TSA_METRICS)
    registry.register(_Registry(ALERT_REGISTRY))
    ep = parse_endpoint(listen)
    server, _ = start_http_server(ep.port, ep.host, registry=registry)
    return int(server.server_port)


def run(settings: Settings, stop: threading.Event) -> None:
    """Seal, evaluate and alert until ``stop`` is set."""
    from logmaster.archive.sealer import Sealer
    from logmaster.compliance.alerts import Dispatcher
    from logmaster.compliance.violations import Evaluator
    from logmaster.db import make_engine, migrate

    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    if settings.compliance.metrics_listen:
        try:
            serve_metrics(settings.compliance.metrics_listen)
        except OSError as exc:  # sealing matters more than its counters: go on without them
            log.error(
                "Cannot serve the sealer's /metrics; sealing anyway.",
                extra={"listen": settings.compliance.metrics_listen, "error": str(exc)},
            )
    dispatcher = Dispatcher(settings, engine)
    dispatcher.start()
    evaluator = Evaluator(settings, engine, dispatcher=dispatcher)
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
