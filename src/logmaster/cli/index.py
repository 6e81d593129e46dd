"""Index and questions: ``index``, ``reindex``, ``search``, ``attribute``, ``parse``."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
from typing import Annotated, Any

import typer

from logmaster.cli.common import (
    ConfigOpt,
    DataDirOpt,
    err,
    event_json,
    fail,
    open_indexer,
    out,
    parse_date,
    settings_from,
    zone_option,
)


def index(
    once: Annotated[bool, typer.Option(help="Catch up with the archive and exit.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the indexer: parse new archive lines into the index (follows the archive)."""
    settings = settings_from(config, data_dir)
    indexer = open_indexer(settings, group=True)
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


def reindex(
    from_: Annotated[str, typer.Option("--from", help="First archive day (YYYY-MM-DD).")],
    to: Annotated[str, typer.Option("--to", help="Last archive day (YYYY-MM-DD).")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Rebuild the index of a range of archive days from the archive."""
    from logmaster.archive.verify import day_files
    from logmaster.cluster import drop_indexed

    settings = settings_from(config, data_dir)
    first, last = parse_date(from_), parse_date(to)
    assert first is not None and last is not None
    if first > last:
        raise fail("--from is after --to")
    indexer = open_indexer(settings)
    drop_indexed(indexer.backend, settings, first, last)
    n = 0
    for device, day, path in day_files(settings.archive_dir, compressed=True, supplements=True):
        if first <= day <= last:
            n += indexer.index_file(device, day, path)
    indexer.close()
    out.print(f"reindexed {n:,} lines of {first} .. {last}", highlight=False)


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
    zone = zone_option(timezone)
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
    zone = zone_option(timezone)
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

    zone = zone_option(timezone)
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
