"""Embedded mode (``logmaster run``): everything on one machine, started by one command.

The collector runs in this process; the indexer and the API run in child processes, so parsing
(CPU-bound Python), searching and receiving use both cores instead of sharing one interpreter
lock. A child that dies is restarted; stopping (SIGTERM, Ctrl-C) stops the API first, then the
collector, so every received line is archived, then the indexer, which has committed whatever it
indexed.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from typing import Any

from logmaster import serverlog
from logmaster.collector.service import Collector
from logmaster.config import Settings

log = logging.getLogger(__name__)


def indexer_main(settings_json: dict[str, Any]) -> None:
    """Entry point of the indexer child process."""
    from logmaster.index.metrics import serve_metrics
    from logmaster.index.workers import IndexerGroup

    settings = Settings.model_validate(settings_json)
    serverlog.setup(settings.log_level, settings.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    indexer = IndexerGroup(settings)
    if settings.index.metrics_listen:
        serve_metrics(indexer, settings.index.metrics_listen)
    log.info("Indexer running.", extra={"backend": settings.index.backend})
    indexer.run(stop)
    indexer.close()


def compliance_main(settings_json: dict[str, Any]) -> None:
    """Entry point of the sealer / compliance child process."""
    from logmaster.compliance import service

    settings = Settings.model_validate(settings_json)
    serverlog.setup(settings.log_level, settings.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    service.run(settings, stop)


class Embedded:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.collector = Collector(settings)
        self.ctx = multiprocessing.get_context("spawn")
        self.indexer: Any = None
        self.api: Any = None
        self.compliance: Any = None

    def start(self) -> None:
        self.collector.start()
        self._start_indexer()
        self._start_api()
        self._start_compliance()

    def _start_compliance(self) -> None:
        # Sealing hashes whole day files and signs: kept off the collector's interpreter lock.
        self.compliance = self.ctx.Process(
            target=compliance_main,
            args=(self.settings.model_dump(mode="json"),),
            name="logmaster-sealer",
            daemon=True,
        )
        self.compliance.start()

    def _start_api(self) -> None:
        # A process of its own, like the indexer: searches and tails must not take the
        # interpreter lock from the archive thread.
        from logmaster.api.server import api_main

        self.api = self.ctx.Process(
            target=api_main,
            args=(self.settings.model_dump(mode="json"),),
            name="logmaster-api",
            daemon=True,
        )
        self.api.start()

    def _start_indexer(self) -> None:
        self.indexer = self.ctx.Process(
            target=indexer_main,
            args=(self.settings.model_dump(mode="json"),),
            name="logmaster-indexer",
            # Not a daemon: it starts its own processes (one per share of the devices).
        )
        self.indexer.start()

    def serve_forever(self, stop: threading.Event) -> None:
        while not stop.wait(2.0):
            if not self.indexer.is_alive():
                log.error(
                    "Indexer process died; restarting it.",
                    extra={"exitcode": self.indexer.exitcode},
                )
                self._start_indexer()
            if not self.api.is_alive():
                log.error("API process died; restarting it.", extra={"exitcode": self.api.exitcode})
                self._start_api()
            if not self.compliance.is_alive():
                log.error(
                    "Sealer process died; restarting it.",
                    extra={"exitcode": self.compliance.exitcode},
                )
                self._start_compliance()
        self.api.terminate()  # SIGTERM: uvicorn closes connections and tails, then exits
        self.api.join(timeout=15)
        if self.api.is_alive():
            self.api.kill()
        self.compliance.terminate()  # SIGTERM: a seal in progress finishes its device-day
        self.compliance.join(timeout=60)
        if self.compliance.is_alive():
            self.compliance.kill()
        self.collector.stop()
        self.indexer.terminate()  # SIGTERM: it finishes its batch and exits
        self.indexer.join(timeout=60)
        if self.indexer.is_alive():
            self.indexer.kill()
