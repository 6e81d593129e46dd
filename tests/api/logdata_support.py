"""Helpers of the log-data API tests: a real collector on the API's data directory, real syslog
senders (UDP from 127.0.1.x addresses, ``logger``), the real indexer run to catch up.

Plain functions and fixtures imported by the test modules (a second conftest.py here would
shadow the accounts fixtures).
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from logmaster.collector.service import Collector
from logmaster.index.indexer import Indexer
from support import Ports, free_port, wait_for

ISTANBUL = ZoneInfo("Europe/Istanbul")


def bsd(t: dt.datetime) -> str:
    """An RFC 3164 timestamp (``Nov  8 10:00:05``)."""
    return f"{t.strftime('%b')} {t.day:2d} {t.strftime('%H:%M:%S')}"


@dataclass
class Site:
    """An API server and a collector sharing one data directory."""

    api: Any
    collector: Collector
    udp_port: int

    def send(self, source: str, *messages: str | bytes) -> None:
        """Send each message as one UDP datagram from ``source`` (a 127.x address)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            for m in messages:
                s.sendto(m.encode() if isinstance(m, str) else m, ("127.0.0.1", self.udp_port))

    def archived(self) -> int:
        return int(self.collector.writer.stats.lines)

    def wait_archived(self, count: int, timeout: float = 10.0) -> None:
        wait_for(lambda: self.archived() >= count, timeout=timeout)

    def index(self) -> int:
        """Index everything archived so far (the real indexer, caught up once)."""
        indexer = Indexer.from_settings(self.api.settings)
        try:
            return int(indexer.catch_up())
        finally:
            indexer.close()

    def logger(self, message: str, tag: str = "app") -> None:
        """Send with util-linux ``logger`` (source 127.0.0.1)."""
        subprocess.run(
            [
                "logger",
                "--udp",
                "--server",
                "127.0.0.1",
                "--port",
                str(self.udp_port),
                "--rfc5424",
                "-t",
                tag,
                message,
            ],
            check=True,
        )


@pytest.fixture
def api(start_api: Callable[..., Any]) -> Any:
    """The API server of these tests: index parsing in-process (workers 0), no metrics port."""
    return start_api(index={"workers": 0, "metrics_listen": ""})


@pytest.fixture
def start_site(api: Any, ports: Ports) -> Iterator[Callable[[], Site]]:
    """Start a collector on the API's data directory; call it after adding the devices (the
    collector reads them at start; later ones would first be pending senders)."""
    started: list[Collector] = []

    def start() -> Site:
        from logmaster.config import load_settings

        settings = load_settings(
            None,
            data_dir=api.settings.data_dir,
            collector={"udp": [f"127.0.0.1:{ports.udp}"], "tcp": [], "tls": []},
            archive={"flush_interval_ms": 20},
            metrics={"listen": ""},
            index={"workers": 0, "metrics_listen": ""},
        )
        collector = Collector(settings)
        collector.start()
        started.append(collector)
        return Site(api, collector, ports.udp)

    yield start
    for c in started:
        if c.ingest._thread is not None and c.ingest._thread.is_alive():
            c.stop()


def syslog(
    host: str, text: str, pri: int = 134, when: dt.datetime | None = None, zone: str = ""
) -> str:
    """An RFC 3164 line stamped now (or ``when``) in ``zone`` (default Europe/Istanbul), as a
    device of that timezone would send it."""
    tz = ZoneInfo(zone) if zone else ISTANBUL
    t = (when or dt.datetime.now(tz)).astimezone(tz)
    return f"<{pri}>{bsd(t)} {host} {text}"


__all__ = ["ISTANBUL", "Site", "api", "bsd", "free_port", "start_site", "syslog"]
