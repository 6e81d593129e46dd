"""Evidence bundles from the command line: ``logmaster export``.

``logmaster export --device gw1 --from 2026-11-01 --to 2026-11-30 [--query Q] --out gw1.zip``
exports sealed days (archive/bundle.py); ``logmaster export --attribution --ip 203.0.113.7
--port 40000 --at "28.11.2026 10:00:05" --out who.zip`` exports an attribution report with the
days it cites. The ZIP is written under a temporary name and renamed when complete, so a failed
export never leaves a partial bundle under the requested name. Every export is recorded in the
audit trail (actor ``cli:<os user>``).

Exit codes: 0 written; 1 written but some stamps are still pending (the bundle says which);
2 usage error or nothing to export.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from logmaster.cli.common import (
    ConfigOpt,
    DataDirOpt,
    fail,
    open_metadata,
    out,
    parse_date,
    zone_option,
)


def export(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The ZIP to write (new file).")],
    device: Annotated[str | None, typer.Option(help="Device slug (day export).")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (device's local day).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None,
    query: Annotated[
        str | None,
        typer.Option(help="Also extract the lines matching this query, each with a Merkle proof."),
    ] = None,
    attribution: Annotated[
        bool, typer.Option("--attribution", help="Export an attribution report instead.")
    ] = False,
    ip: Annotated[str | None, typer.Option(help="Attribution: public or internal IP.")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Attribution: public source port.")
    ] = None,
    mac: Annotated[str | None, typer.Option(help="Attribution: start from a MAC.")] = None,
    at: Annotated[
        str | None, typer.Option(help="Attribution: the moment (28.11.2026 10:00:05, ISO ...).")
    ] = None,
    window: Annotated[int, typer.Option(min=0, help="Attribution: seconds around --at.")] = 60,
    timezone: Annotated[str, typer.Option(help="Zone for --at without one.")] = "Europe/Istanbul",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write an evidence bundle (ZIP) that verifies with sha256sum and openssl alone."""
    from logmaster.archive.bundle import BundleError, Summary, export_days
    from logmaster.archive.bundle_attribution import export_attribution

    if out_file.exists():
        raise fail(f"{out_file} exists: give a new file name (bundles are never overwritten)")
    if not out_file.parent.is_dir():
        raise fail(f"{out_file.parent} is not a directory")
    settings, engine = open_metadata(config, data_dir)
    actor = f"cli:{getpass.getuser()}"
    tmp = out_file.with_name(f".{out_file.name}.partial")
    target: str
    details: dict[str, Any]
    try:
        with tmp.open("xb") as fh:
            if attribution:
                result, target = _attribute(settings, engine, ip, port, mac, at, window, timezone)
                summary: Summary = export_attribution(settings, result, fh, exported_by=actor)
                details = {"kind": "attribution", "window": window}
            else:
                if device is None or from_ is None or to is None:
                    raise fail("give --device, --from and --to (or --attribution)")
                first, last = parse_date(from_), parse_date(to)
                assert first is not None and last is not None
                summary = export_days(
                    settings, device, first, last, fh, query=query, exported_by=actor
                )
                target = f"{device} {first}..{last}"
                details = {"kind": "days", "query": query}
            fh.flush()
            os.fsync(fh.fileno())
    except BundleError as exc:
        tmp.unlink(missing_ok=True)
        raise fail(str(exc)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out_file)
    from logmaster.api import audit

    details.update(file=str(out_file), days=len(summary.entries), extracted_lines=summary.extracted)
    audit.record(
        engine,
        actor=actor,
        source_ip=None,
        action="export",
        target=target,
        result=audit.OK,
        details=details,
    )
    engine.dispose()
    size = out_file.stat().st_size
    out.print(
        f"{out_file}: {len(summary.entries)} sealed day part(s), {summary.extracted} extracted "
        f"line(s), {len(summary.files)} files, {size:,} bytes",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if summary.not_accredited:
        out.print(
            "NOTE / NOT: stamps not from an accredited TSA are labelled as such in the bundle "
            "(akredite olmayan zaman damgaları pakette belirtilmiştir)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    for item in summary.left_out:
        out.print(
            "not included / pakete alınmadı: " + ", ".join(f"{k}={v}" for k, v in item.items()),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if summary.pending:
        out.print(
            f"{summary.pending} manifest(s) still wait for their timestamp: export again later "
            "for a bundle that verifies completely",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _attribute(
    settings: Any,
    engine: Any,
    ip: str | None,
    port: int | None,
    mac: str | None,
    at: str | None,
    window: int,
    timezone: str,
) -> tuple[Any, str]:
    """Run the attribution query the way ``logmaster attribute`` does."""
    import sqlalchemy as sa

    from logmaster.compliance.attribution import attribute
    from logmaster.db import Device
    from logmaster.index import open_index
    from logmaster.index.query import QueryError, parse_time
    from logmaster.parsers.base import ip as norm_ip
    from logmaster.parsers.base import mac as norm_mac

    if at is None:
        raise fail("--attribution needs --at")
    if (ip is None) == (mac is None):
        raise fail("--attribution needs --ip or --mac (one of them)")
    if ip is not None and norm_ip(ip) is None:
        raise fail(f"--ip {ip!r} is not an IP address")
    if mac is not None and norm_mac(mac) is None:
        raise fail(f"--mac {mac!r} is not a MAC address")
    zone = zone_option(timezone)
    try:
        moment = parse_time(at, dt.datetime.now(zone), zone)
    except QueryError as exc:
        raise fail(str(exc)) from exc
    with engine.connect() as conn:
        locations = dict(conn.execute(sa.select(Device.slug, Device.location)).all())
    backend = open_index(settings)
    try:
        result = attribute(
            backend,
            settings.archive_dir,
            at=moment,
            ip=norm_ip(ip) if ip is not None else None,
            port=port,
            mac=norm_mac(mac) if mac is not None else None,
            window=window,
            locations=locations,
            node=settings.cluster.node,
        )
    finally:
        backend.close()
    subject = norm_mac(mac) if mac is not None else norm_ip(ip or "")
    return result, f"attribution {subject}{'' if port is None else f':{port}'}@{moment.isoformat()}"
