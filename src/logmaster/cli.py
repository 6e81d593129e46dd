"""The ``logmaster`` command line (typer). Every command has ``--help``.

Commands take ``--config FILE`` (or ``LOGMASTER_CONFIG``) and ``--data-dir DIR``; flags override
the file and the environment. Errors the operator can fix are printed as one sentence and exit 2.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import ssl
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from logmaster import __version__, serverlog
from logmaster.config import Settings, describe, load_settings
from logmaster.endpoints import parse_endpoint

app = typer.Typer(
    help="LogMaster: syslog collection, signed archive, Law 5651 compliance.",
    no_args_is_help=True,
    add_completion=False,
)
device_app = typer.Typer(help="Manage the device registry.", no_args_is_help=True)
archive_app = typer.Typer(help="Inspect and verify the archive.", no_args_is_help=True)
app.add_typer(device_app, name="device")
app.add_typer(archive_app, name="archive")

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default: $LOGMASTER_CONFIG)."),
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", "-d", help="Data directory (archive, database, keys).")
]


def fail(message: str) -> typer.Exit:
    # The message quotes operator input: print it as text, never as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(2)


def settings_from(config: Path | None, data_dir: Path | None, **overrides: Any) -> Settings:
    try:
        settings = load_settings(config, data_dir=data_dir, **overrides)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    serverlog.setup(settings.log_level, settings.log_format)
    return settings


def version_callback(value: bool) -> None:
    if value:
        out.print(f"logmaster {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """LogMaster command line."""


# -- setup ------------------------------------------------------------------------------------


@app.command()
def init(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="Directory to create.")],
    config: ConfigOpt = None,
    dev_ports: Annotated[
        bool,
        typer.Option(help="Write a logmaster.toml using ports 5514 and 6514, which need no root."),
    ] = True,
) -> None:
    """Create a data directory: archive, metadata database, TLS certificate, settings file."""
    from logmaster.db import migrate
    from logmaster.tlscert import self_signed

    settings = settings_from(config, data_dir)
    root = settings.data_dir
    root.mkdir(mode=0o750, parents=True, exist_ok=True)
    settings.archive_dir.mkdir(mode=0o750, exist_ok=True)
    migrate(settings.db_url)
    cert, key = root / "tls" / "collector.crt", root / "tls" / "collector.key"
    if not key.exists():
        self_signed(cert, key)
        out.print(f"created self-signed TLS certificate {cert} (key {key}, mode 0600)")
    toml = root / "logmaster.toml"
    if dev_ports and not toml.exists():
        toml.write_text(
            "# Written by `logmaster init`; every setting: `logmaster config`.\n"
            f'data_dir = "{root}"\n\n[collector]\n'
            'udp = ["0.0.0.0:5514", "[::]:5514"]\n'
            'tcp = ["0.0.0.0:5514", "[::]:5514"]\n'
            'tls = ["0.0.0.0:6514", "[::]:6514"]\n'
            f'tls_cert = "{cert}"\ntls_key = "{key}"\n\n'
            '[metrics]\nlisten = "127.0.0.1:9514"\n'
        )
        out.print(f"wrote {toml}")
    out.print(f"data directory ready: {root}")


@app.command("config")
def config_cmd(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    show: Annotated[bool, typer.Option(help="Print the effective values as JSON instead.")] = False,
) -> None:
    """List every setting with its default and meaning (or the effective values)."""
    if show:
        settings = settings_from(config, data_dir)
        out.print_json(settings.model_dump_json())
        return
    table = Table("setting", "default", "meaning", show_lines=False)
    for name, default, text in describe():
        table.add_row(name, default, text)
    out.print(table)
    out.print("Environment: LOGMASTER_<SETTING>, nested with __ (LOGMASTER_ARCHIVE__FSYNC=never).")


# -- running ----------------------------------------------------------------------------------


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
    sys.stdout.flush()
    if service is not None:
        service.serve_forever(stop)
    else:
        collector.serve_forever(stop)


def _collector(settings: Settings) -> Any:
    from logmaster.collector.service import Collector

    return Collector(settings)


@app.command()
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


@app.command()
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
    """Run everything on one machine (embedded mode): collector and indexer."""
    _serve(
        _collector_settings(config, data_dir, udp, tcp, tls, tls_cert, tls_key, workers, metrics),
        embedded=True,
    )


# -- devices ----------------------------------------------------------------------------------


def _engine(config: Path | None, data_dir: Path | None) -> Any:
    from sqlalchemy.exc import SQLAlchemyError

    from logmaster.db import make_engine, migrate

    settings = settings_from(config, data_dir)
    try:
        migrate(settings.db_url)
    except SQLAlchemyError as exc:
        from sqlalchemy.engine import make_url

        where = make_url(settings.db_url).render_as_string(hide_password=True)
        reason = getattr(exc, "orig", None) or exc
        raise fail(
            f"cannot open the metadata database {where}: {reason} "
            "(check --data-dir, or run `logmaster init` first)"
        ) from exc
    return settings, make_engine(settings.db_url)


@device_app.command("add")
def device_add(
    slug: Annotated[str, typer.Argument(help="Short name; names the archive folder.")],
    ip: Annotated[list[str], typer.Option("--ip", help="Sender address or CIDR (repeatable).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    location: Annotated[str, typer.Option(help="Where the device is.")] = "",
    timezone: Annotated[
        str | None,
        typer.Option(help="IANA timezone of the device's day (default: devices.default_timezone)."),
    ] = None,
    hostname: Annotated[
        str | None, typer.Option(help="Match only messages whose syslog hostname is this (relays).")
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Parse this device's lines with this parser only (default: detect per line).",
        ),
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Register an approved device."""
    from logmaster.collector.devices import DeviceError, add_device

    settings, engine = _engine(config, data_dir)
    try:
        dev = add_device(
            engine,
            slug,
            ip,
            name=name,
            location=location,
            hostname=hostname,
            timezone=timezone or settings.devices.default_timezone,
            log_format=log_format,
        )
    except DeviceError as exc:
        raise fail(str(exc)) from exc
    out.print(f"added device {dev.slug} ({', '.join(ip)}), timezone {dev.timezone}")


@device_app.command("list")
def device_list(
    status: Annotated[
        str | None, typer.Option(help="Only this status (pending, approved, rejected, retired).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List devices with their senders, status and last message time."""
    from logmaster.collector.devices import list_devices

    _, engine = _engine(config, data_dir)
    devices = list_devices(engine, status)
    if as_json:
        for d in devices:
            out.print(
                json.dumps(
                    {
                        "slug": d.slug,
                        "name": d.name,
                        "location": d.location,
                        "status": d.status,
                        "timezone": d.timezone,
                        "hostname": d.hostname,
                        "sources": [s.cidr for s in d.sources],
                        "last_seen_at": d.last_seen_at.isoformat() if d.last_seen_at else None,
                    }
                ),
                highlight=False,
                markup=False,
                emoji=False,
                soft_wrap=True,
            )
        return
    table = Table("device", "status", "senders", "hostname", "timezone", "location", "last seen")
    for d in devices:
        table.add_row(
            d.slug,
            d.status,
            " ".join(s.cidr for s in d.sources),
            escape(d.hostname or ""),
            d.timezone,
            escape(d.location),
            _local(d.last_seen_at, d.timezone),
        )
    out.print(table)


def _local(when: dt.datetime | None, zone: str) -> str:
    if when is None:
        return "never"
    from zoneinfo import ZoneInfo

    if when.tzinfo is None:  # SQLite returns naive UTC
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(ZoneInfo(zone)).strftime("%d.%m.%Y %H:%M:%S %Z")


def _set_status(slug: str, status: str, config: Path | None, data_dir: Path | None) -> None:
    from logmaster.collector.devices import DeviceError, set_status

    _, engine = _engine(config, data_dir)
    try:
        set_status(engine, slug, status)
    except DeviceError as exc:
        raise fail(str(exc)) from exc
    out.print(f"device {slug} is now {status}")


SlugArg = Annotated[str, typer.Argument(help="Device slug.")]


@device_app.command("format")
def device_format(
    slug: SlugArg,
    log_format: Annotated[str, typer.Argument(help="Parser name, or 'auto' to detect.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Pin a device to one log format (parser), or back to automatic detection."""
    from logmaster.collector.devices import DeviceError, set_format

    _, engine = _engine(config, data_dir)
    try:
        set_format(engine, slug, None if log_format == "auto" else log_format)
    except DeviceError as exc:
        raise fail(str(exc)) from exc
    out.print(f"device {slug} format: {log_format}", highlight=False)


@device_app.command("approve")
def device_approve(slug: SlugArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Approve a pending (or rejected/retired) device."""
    _set_status(slug, "approved", config, data_dir)


@device_app.command("reject")
def device_reject(slug: SlugArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Reject a device: its further messages are counted, not archived."""
    _set_status(slug, "rejected", config, data_dir)


@device_app.command("retire")
def device_retire(slug: SlugArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Retire a device that was taken out of service (its archive stays; late lines are kept)."""
    _set_status(slug, "retired", config, data_dir)


# -- archive ----------------------------------------------------------------------------------


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"--date {value!r}: use YYYY-MM-DD") from exc


@archive_app.command("verify")
def archive_verify(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    date: Annotated[str | None, typer.Option(help="Only this day (YYYY-MM-DD).")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Recompute the hash chains; exit 1 naming the first line that does not match."""
    from logmaster.archive.verify import day_files, verify_day

    settings = settings_from(config, data_dir)
    failed = checked = 0
    for dev, day, path in day_files(settings.archive_dir, device, _date(date)):
        report = verify_day(dev, day, path)
        checked += 1
        if report.ok:
            note = f" ({'; '.join(report.notes)})" if report.notes else ""
            out.print(f"OK    {dev} {day} {report.lines} lines{note}", highlight=False)
        else:
            failed += 1
            out.print(f"FAIL  {dev} {day} {path}: {'; '.join(report.problems)}", highlight=False)
    if checked == 0:
        raise fail("no day files match (check --data-dir, --device and --date)")
    out.print(f"{checked} day files checked, {failed} failed", highlight=False)
    raise typer.Exit(1 if failed else 0)


@archive_app.command("stats")
def archive_stats(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    date: Annotated[str | None, typer.Option(help="Only this day (YYYY-MM-DD).")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Lines, bytes and chain state per device-day (from the chain files, no rehashing)."""
    from logmaster.archive.verify import day_files, stats_day

    settings = settings_from(config, data_dir)
    table = Table("device", "day", "lines", "bytes", "chain")
    for dev, day, path in day_files(settings.archive_dir, device, _date(date)):
        st = stats_day(dev, day, path)
        table.add_row(
            st.device, st.day.strftime("%d.%m.%Y"), f"{st.lines:,}", f"{st.size:,}", st.state
        )
    out.print(table)


# -- index, search, attribution -----------------------------------------------------------------


def _indexer(settings: Settings) -> Any:
    from logmaster.index.indexer import Indexer

    try:
        return Indexer.from_settings(settings)
    except (ValueError, OSError) as exc:
        raise fail(f"cannot open the index: {exc}") from exc


@app.command()
def index(
    once: Annotated[bool, typer.Option(help="Catch up with the archive and exit.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the indexer: parse new archive lines into the index (follows the archive)."""
    settings = settings_from(config, data_dir)
    indexer = _indexer(settings)
    if once:
        n = indexer.catch_up()
        indexer.close()
        out.print(f"indexed {n:,} lines", highlight=False)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if settings.index.metrics_listen:
        from logmaster.index.metrics import serve_metrics

        serve_metrics(indexer, settings.index.metrics_listen)
    out.print(
        f"indexing {settings.archive_dir} into the {settings.index.backend} index", highlight=False
    )
    sys.stdout.flush()
    indexer.run(stop)
    indexer.close()


@app.command()
def reindex(
    from_: Annotated[str, typer.Option("--from", help="First archive day (YYYY-MM-DD).")],
    to: Annotated[str, typer.Option("--to", help="Last archive day (YYYY-MM-DD).")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Rebuild the index of a range of archive days from the archive."""
    from logmaster.archive.verify import day_files

    settings = settings_from(config, data_dir)
    first, last = _date(from_), _date(to)
    assert first is not None and last is not None
    if first > last:
        raise fail("--from is after --to")
    indexer = _indexer(settings)
    indexer.backend.drop_days(first, last)
    n = 0
    for device, day, path in day_files(settings.archive_dir):
        if first <= day <= last:
            n += indexer.index_file(device, day, path)
    indexer.close()
    out.print(f"reindexed {n:,} lines of {first} .. {last}", highlight=False)


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise fail(f"unknown timezone {name!r}") from exc


@app.command()
def search(
    query: Annotated[
        str, typer.Argument(help="Query, e.g. 'src:10.0.0.0/8 AND \"logged in\"'.")
    ] = "",
    from_: Annotated[
        str | None,
        typer.Option("--from", help="Start: -15m, today, 2026-11-28T10:00, 28.11.2026 10:00 ..."),
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="End (default now).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="Events to print.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
    timezone: Annotated[
        str, typer.Option(help="Zone for times without one and for display.")
    ] = "Europe/Istanbul",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Search the index (newest first)."""
    from logmaster.index import open_index
    from logmaster.index.base import SearchRequest
    from logmaster.index.query import QueryError, parse_query, time_range

    settings = settings_from(config, data_dir)
    zone = _zone(timezone)
    try:
        now = dt.datetime.now(zone)
        node = parse_query(query, now=now, zone=zone)
        start, end = time_range(from_, to, now, zone)
    except QueryError as exc:
        raise fail(str(exc)) from exc
    backend = open_index(settings)
    page = backend.search(SearchRequest(node, start, end, limit))
    counts = backend.device_counts(SearchRequest(node, start, end))
    backend.close()
    for hit in page.hits:
        if as_json:
            sys.stdout.write(event_json(hit.event) + "\n")
        else:
            ts = hit.event["@timestamp"].astimezone(zone).strftime("%d.%m.%Y %H:%M:%S")
            out.print(
                f"{ts} {hit.event.get('observer.name', '-')} {hit.event.get('message', '')}",
                highlight=False,
                markup=False,
                emoji=False,
                soft_wrap=True,
            )
    if not as_json:
        total = sum(counts.values())
        per = ", ".join(f"{d}: {n:,}" for d, n in sorted(counts.items()))
        err.print(
            f"{total:,} events match ({per or 'none'}); showing {len(page.hits)}", highlight=False
        )


@app.command()
def attribute(
    at: Annotated[
        str,
        typer.Option(
            "--at", help="The moment (2026-11-28T10:00:05, 28.11.2026 10:00:05, -1h ...)."
        ),
    ],
    ip: Annotated[
        str | None, typer.Option("--ip", help="Public (post-NAT) or internal IP.")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="Public source port.")
    ] = None,
    mac: Annotated[str | None, typer.Option("--mac", help="Start from a MAC instead.")] = None,
    window: Annotated[
        int, typer.Option("--window", min=0, help="Seconds of tolerance around --at.")
    ] = 60,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    timezone: Annotated[str, typer.Option(help="Zone for times without one.")] = "Europe/Istanbul",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Who used this IP (and port) at that moment? Each hop cites its archive line."""
    from dataclasses import asdict

    from logmaster.compliance.attribution import attribute as run_attribution
    from logmaster.index import open_index
    from logmaster.index.query import QueryError, parse_time
    from logmaster.parsers.base import ip as norm_ip
    from logmaster.parsers.base import mac as norm_mac

    settings = settings_from(config, data_dir)
    zone = _zone(timezone)
    if (ip is None) == (mac is None):
        raise fail("give --ip or --mac")
    if ip is not None and norm_ip(ip) is None:
        raise fail(f"--ip {ip!r} is not an IP address")
    if mac is not None and norm_mac(mac) is None:
        raise fail(f"--mac {mac!r} is not a MAC address")
    try:
        moment = parse_time(at, dt.datetime.now(zone), zone)
    except QueryError as exc:
        raise fail(str(exc)) from exc
    from logmaster.collector.devices import list_devices
    from logmaster.db import make_engine, migrate

    migrate(settings.db_url)
    locations = {d.slug: d.location for d in list_devices(make_engine(settings.db_url))}
    backend = open_index(settings)
    result = run_attribution(
        backend,
        settings.archive_dir,
        at=moment,
        ip=norm_ip(ip),
        port=port,
        mac=norm_mac(mac),
        window=window,
        locations=locations,
    )
    backend.close()
    if as_json:
        sys.stdout.write(json.dumps(asdict(result), default=str, ensure_ascii=False) + "\n")
        return
    _print_attribution(result, zone)


def _print_attribution(result: Any, zone: Any) -> None:
    def when(t: dt.datetime | None) -> str:
        return t.astimezone(zone).strftime("%d.%m.%Y %H:%M:%S") if t else "?"

    subject = result.mac or (f"{result.ip}:{result.port}" if result.port is not None else result.ip)
    out.print(
        f"Attribution of {subject} at {when(result.at)} (±{result.window}s)",
        highlight=False,
        markup=False,
    )
    for n, chain in enumerate(result.chains, 1):
        out.print(
            f"\ncandidate {n}: internal {chain.internal_ip or '-'}"
            f"{':' + str(chain.internal_port) if chain.internal_port else ''}; "
            f"MAC {', '.join(chain.macs) or '?'}; user {', '.join(chain.users) or '?'}",
            highlight=False,
            markup=False,
        )
        hops = (
            ([("NAT", chain.nat)] if chain.nat else [])
            + [("DHCP", h) for h in chain.leases]
            + [("hotspot", h) for h in chain.logins]
        )
        for label, hop in hops:
            s = hop.session
            out.print(
                f"  {label} on {s.device} {when(s.start)} .. {when(s.end or s.expires)}"
                f" ({hop.note})",
                highlight=False,
                markup=False,
            )
            for cite in hop.evidence:
                out.print(
                    f"    {cite.file}@{cite.offset}: {cite.line}",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )
    if result.ambiguous:
        out.print(
            "\nAMBIGUOUS: several candidates fit; all are listed.", highlight=False, markup=False
        )
    for text in result.missing:
        out.print(f"missing: {text}", highlight=False, markup=False)


# -- parsing ----------------------------------------------------------------------------------


def event_json(event: dict[str, Any]) -> str:
    """One event as a JSON object with flat dotted ECS keys; times as RFC 3339."""

    def convert(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.isoformat()
        return value

    return json.dumps({k: convert(v) for k, v in event.items()}, ensure_ascii=False, default=str)


@app.command()
def parse(
    timezone: Annotated[
        str, typer.Option(help="Zone of timestamps without one (RFC 3164).")
    ] = "Europe/Istanbul",
    year: Annotated[
        int | None,
        typer.Option(help="Year of RFC 3164 timestamps (default: inferred from the current time)."),
    ] = None,
    pinned: Annotated[str | None, typer.Option("--format", help="Use only this parser.")] = None,
) -> None:
    """Read raw lines on standard input, print one JSON event per line."""
    from logmaster import parsers

    zone = _zone(timezone)
    if pinned is not None and pinned not in parsers.BY_NAME:
        raise fail(f"unknown format {pinned!r}; known: {', '.join(parsers.BY_NAME)}")
    stdout = sys.stdout
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        event, _ = parsers.parse(
            line, zone=zone, received=dt.datetime.now(zone), year=year, pinned=pinned
        )
        stdout.write(event_json(event) + "\n")
    stdout.flush()


# -- load generator ---------------------------------------------------------------------------


@app.command()
def loadgen(
    udp: Annotated[str | None, typer.Option("--udp", help="Send UDP to HOST:PORT.")] = None,
    tcp: Annotated[str | None, typer.Option("--tcp", help="Send TCP to HOST:PORT.")] = None,
    tls: Annotated[str | None, typer.Option("--tls", help="Send TLS to HOST:PORT.")] = None,
    rate: Annotated[int, typer.Option(min=1, help="Messages per second.")] = 1000,
    seconds: Annotated[float, typer.Option(min=0.001, help="How long to send.")] = 10.0,
    size: Annotated[
        int, typer.Option(min=16, max=65000, help="Bytes per generated message.")
    ] = 200,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file", help="Send these lines (in a loop) instead of generated messages."
        ),
    ] = None,
    senders: Annotated[
        int, typer.Option(min=1, help="Distinct source addresses (127.0.1.x on loopback).")
    ] = 1,
    first_sender: Annotated[
        int,
        typer.Option(
            min=0,
            help="Number of the first sender (to split senders across several loadgen processes).",
        ),
    ] = 0,
    framing: Annotated[str, typer.Option(help="TCP/TLS framing: octet or lf.")] = "octet",
    ca: Annotated[Path | None, typer.Option(help="CA file to verify the TLS server.")] = None,
    insecure: Annotated[bool, typer.Option(help="Do not verify the TLS server.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Send syslog at a fixed rate (a real sender, for tests and deployment checks)."""
    from logmaster import loadgen as lg

    chosen = [(t, v) for t, v in (("udp", udp), ("tcp", tcp), ("tls", tls)) if v]
    if len(chosen) != 1:
        raise fail("give exactly one of --udp, --tcp, --tls")
    if framing not in ("octet", "lf"):
        raise fail("--framing: octet or lf")
    transport, spec = chosen[0]
    try:
        target = parse_endpoint(spec)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    ctx = None
    if transport == "tls":
        ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    try:
        result = lg.run(
            transport,
            target,
            rate=rate,
            seconds=seconds,
            size=size,
            senders=senders,
            from_file=from_file,
            framing=framing,
            tls=ctx,
            first_sender=first_sender,
        )
    except (OSError, ValueError) as exc:
        raise fail(f"loadgen: {exc}") from exc
    if as_json:
        sys.stdout.write(json.dumps({**vars(result), "rate": result.rate}) + "\n")
    else:
        out.print(
            f"sent {result.sent:,} messages ({result.bytes:,} bytes) over "
            f"{result.transport} to {result.target} from {result.senders} sender(s) in "
            f"{result.seconds:.2f} s: {result.rate:,.0f} msg/s",
            highlight=False,
        )
