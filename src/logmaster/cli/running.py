"""Running services: ``collect`` (collector alone) and ``run`` (everything, embedded)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, out, settings_from
from logmaster.config import Settings


def _collector_settings(
    config: Path | None,
    data_dir: Path | None,
    udp: list[str] | None,
    tcp: list[str] | None,
    tls: list[str] | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    workers: int | None,
    metrics: str | None,
) -> Settings:
    settings = settings_from(config, data_dir)
    updates: dict[str, Any] = {}
    if udp or tcp or tls:
        # Listeners given on the command line replace the configured set as a whole.
        updates = {"udp": udp or [], "tcp": tcp or [], "tls": tls or []}
    for key, value in (("tls_cert", tls_cert), ("tls_key", tls_key), ("workers", workers)):
        if value is not None:
            updates[key] = value
    collector = settings.collector.model_validate({**settings.collector.model_dump(), **updates})
    merged = settings.model_copy(update={"collector": collector})
    if metrics is not None:
        merged.metrics.listen = metrics or None
    try:
        merged.check_listeners()
    except ValueError as exc:
        raise fail(str(exc)) from exc
    return merged


UdpOpt = Annotated[
    list[str] | None,
    typer.Option("--udp", help="UDP listener HOST:PORT (repeatable; IPv6 as [::1]:514)."),
]
TcpOpt = Annotated[
    list[str] | None, typer.Option("--tcp", help="TCP listener HOST:PORT (repeatable).")
]
TlsOpt = Annotated[
    list[str] | None, typer.Option("--tls", help="TLS listener HOST:PORT (repeatable, RFC 5425).")
]
CertOpt = Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate for --tls.")]
KeyOpt = Annotated[Path | None, typer.Option("--tls-key", help="PEM key for --tls.")]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", min=1, max=64, help="Receiving processes (SO_REUSEPORT).")
]
MetricsOpt = Annotated[
    str | None, typer.Option("--metrics", help="HOST:PORT for /metrics; empty to disable.")
]


def _serve(settings: Settings, embedded: bool = False) -> None:
    from logmaster.supervisor import Embedded

    settings.data_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    service = Embedded(settings) if embedded else None
    collector = service.collector if service else _collector(settings)
    try:
        if service is not None:
            service.start()
        else:
            collector.start()
    except OSError as exc:
        raise fail(
            f"cannot start the collector: {exc} (port in use, or below 1024 without "
            "root / CAP_NET_BIND_SERVICE?)"
        ) from exc
    except ValueError as exc:
        raise fail(str(exc)) from exc
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    out.print("LogMaster collector listening on:", highlight=False)
    for ep in collector.endpoints:
        out.print(f"  {ep}", highlight=False)
    if collector.metrics_port:
        out.print(f"  metrics: http://{settings.metrics.listen}/metrics", highlight=False)
    out.print(f"  archive: {settings.archive_dir}", highlight=False)
    if service is not None:
        out.print(
            f"  index:   {settings.index.backend} (indexer metrics: "
            f"http://{settings.index.metrics_listen}/metrics)",
            highlight=False,
        )
        out.print(f"  api:     http://{settings.api.listen}/api/v1", highlight=False)
    sys.stdout.flush()
    if service is not None:
        service.serve_forever(stop)
    else:
        collector.serve_forever(stop)


def _collector(settings: Settings) -> Any:
    from logmaster.collector.service import Collector

    return Collector(settings)


def collect(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    udp: UdpOpt = None,
    tcp: TcpOpt = None,
    tls: TlsOpt = None,
    tls_cert: CertOpt = None,
    tls_key: KeyOpt = None,
    workers: WorkersOpt = None,
    metrics: MetricsOpt = None,
) -> None:
    """Run the collector: receive syslog and append it to the archive."""
    _serve(
        _collector_settings(config, data_dir, udp, tcp, tls, tls_cert, tls_key, workers, metrics)
    )


def run(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    udp: UdpOpt = None,
    tcp: TcpOpt = None,
    tls: TlsOpt = None,
    tls_cert: CertOpt = None,
    tls_key: KeyOpt = None,
    workers: WorkersOpt = None,
    metrics: MetricsOpt = None,
) -> None:
    """Run everything on one machine (embedded mode): collector, indexer, API and sealer."""
    _serve(
        _collector_settings(config, data_dir, udp, tcp, tls, tls_cert, tls_key, workers, metrics),
        embedded=True,
    )
