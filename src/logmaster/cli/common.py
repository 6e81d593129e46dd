"""What every command module shares: consoles, the common options, error exit, settings."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from logmaster import serverlog
from logmaster.config import Settings, load_settings

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


def open_metadata(config: Path | None, data_dir: Path | None) -> Any:
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


def local_time(when: dt.datetime | None, zone: str) -> str:
    if when is None:
        return "never"
    from zoneinfo import ZoneInfo

    if when.tzinfo is None:  # SQLite returns naive UTC
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(ZoneInfo(zone)).strftime("%d.%m.%Y %H:%M:%S %Z")


def parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"--date {value!r}: use YYYY-MM-DD") from exc


def open_indexer(settings: Settings, group: bool = False) -> Any:
    """The indexer of the settings; ``group``: all its processes (``index.workers``)."""
    from logmaster.index.indexer import Indexer
    from logmaster.index.workers import IndexerGroup

    try:
        return IndexerGroup(settings) if group else Indexer.from_settings(settings)
    except (ValueError, OSError) as exc:
        raise fail(f"cannot open the index: {exc}") from exc


def zone_option(name: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise fail(f"unknown timezone {name!r}") from exc


def event_json(event: dict[str, Any]) -> str:
    """One event as a JSON object with flat dotted ECS keys; times as RFC 3339."""

    def convert(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.isoformat()
        return value

    return json.dumps({k: convert(v) for k, v in event.items()}, ensure_ascii=False, default=str)
