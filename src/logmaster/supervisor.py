"""Embedded mode (``logmaster run``): everything on one machine, started by one command.

The collector runs in this process; the indexer runs in a child process, so parsing (CPU-bound
Python) and receiving use both cores instead of sharing one interpreter lock. A child that dies is
restarted; stopping (SIGTERM, Ctrl-C) stops the collector first, so every received line is
archived, then the indexer, which has committed whatever it indexed.
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
    from logmaster.index.indexer import Indexer
    from logmaster.index.metrics import serve_metrics

    settings = Settings.model_validate(settings_json)
    serverlog.setup(settings.log_level, settings.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    indexer = Indexer.from_settings(settings)
    if settings.index.metrics_listen:
        serve_metrics(indexer, settings.index.metrics_listen)
    log.info("Indexer running.", extra={"backend": settings.index.backend})
    indexer.run(stop)
    indexer.close()


class Embedded:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.collector = Collector(settings)
        self.ctx = multiprocessing.get_context("spawn")
        self.indexer: Any = None

    def start(self) -> None:
        self.collector.start()
        self._start_indexer()

    def _start_indexer(self) -> None:
        self.indexer = self.ctx.Process(
            target=indexer_main,
            args=(self.settings.model_dump(mode="json"),),
            name="logmaster-indexer",
            daemon=True,
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
        self.collector.stop()
        self.indexer.terminate()  # SIGTERM: it finishes its batch and exits
        self.indexer.join(timeout=60)
        if self.indexer.is_alive():
            self.indexer.kill()
