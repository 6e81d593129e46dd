"""Shared fixtures: free ports, a collector running in this process or as a real subprocess."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from logmaster.collector.service import Collector
from logmaster.config import load_settings
from support import CollectorProcess, Ports, free_port


@pytest.fixture
def ports() -> Ports:
    return Ports("127.0.0.1", free_port(socket.SOCK_DGRAM), free_port(), free_port(), free_port())


@pytest.fixture
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from logmaster.tlscert import self_signed

    d = tmp_path_factory.mktemp("tls")
    self_signed(d / "cert.pem", d / "key.pem")
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def start_collector(tmp_path: Path, ports: Ports) -> Iterator[Callable[..., Collector]]:
    """Start a collector in this process; stopped (and flushed) at the end of the test."""
    started: list[Collector] = []

    def start(**overrides: Any) -> Collector:
        collector_kw = {
            "udp": [f"{ports.host}:{ports.udp}"],
            "tcp": [f"{ports.host}:{ports.tcp}"],
            "tls": [],
            **overrides.pop("collector", {}),
        }
        settings = load_settings(
            None,
            data_dir=overrides.pop("data_dir", tmp_path / "data"),
            collector=collector_kw,
            archive={"flush_interval_ms": 20, **overrides.pop("archive", {})},
            metrics={"listen": f"127.0.0.1:{ports.metrics}"},
            **overrides,
        )
        c = Collector(settings)
        c.start()
        started.append(c)
        return c

    yield start
    for c in started:
        if c.ingest._thread is not None and c.ingest._thread.is_alive():
            c.stop()


@pytest.fixture
def spawn_collector() -> Iterator[Callable[..., CollectorProcess]]:
    procs: list[CollectorProcess] = []

    def spawn(args: list[str], env: dict[str, str] | None = None) -> CollectorProcess:
        p = CollectorProcess(args, env)
        procs.append(p)
        return p

    yield spawn
    for p in procs:
        if p.proc.poll() is None:
            p.kill9()
