"""``logmaster device ...``: the device registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, local_time, open_metadata, out

app = typer.Typer(help="Manage the device registry.", no_args_is_help=True)


@app.command("add")
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

    settings, engine = open_metadata(config, data_dir)
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


@app.command("list")
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

    _, engine = open_metadata(config, data_dir)
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
            local_time(d.last_seen_at, d.timezone),
        )
    out.print(table)


def _set_status(slug: str, status: str, config: Path | None, data_dir: Path | None) -> None:
    from logmaster.collector.devices import DeviceError, set_status

    _, engine = open_metadata(config, data_dir)
    try:
        set_status(engine, slug, status)
    except DeviceError as exc:
        raise fail(str(exc)) from exc
    out.print(f"device {slug} is now {status}")


SlugArg = Annotated[str, typer.Argument(help="Device slug.")]


@app.command("format")
def device_format(
    slug: SlugArg,
    log_format: Annotated[str, typer.Argument(help="Parser name, or 'auto' to detect.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Pin a device to one log format (parser), or back to automatic detection."""
    from logmaster.collector.devices import DeviceError, set_format

    _, engine = open_metadata(config, data_dir)
    try:
        set_format(engine, slug, None if log_format == "auto" else log_format)
    except DeviceError as exc:
        raise fail(str(exc)) from exc
    out.print(f"device {slug} format: {log_format}", highlight=False)


@app.command("approve")
def device_approve(slug: SlugArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Approve a pending (or rejected/retired) device."""
    _set_status(slug, "approved", config, data_dir)


@app.command("reject")
def device_reject(slug: SlugArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Reject a device: its further messages are counted, not archived."""
    _set_status(slug, "rejected", config, data_dir)


@app.command("retire")
def device_retire(slug: SlugArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Retire a device that was taken out of service (its archive stays; late lines are kept)."""
    _set_status(slug, "retired", config, data_dir)
