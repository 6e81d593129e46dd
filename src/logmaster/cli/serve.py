"""``logmaster serve``: the HTTP API (and the web console) alone, with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, out, settings_from
from logmaster.endpoints import parse_endpoint


def serve(
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="HOST:PORT of the API (default: api.listen)."),
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the API under /api/v1 (search, devices, live tail, accounts, audit) and the console."""
    from logmaster.api.server import run_server

    settings = settings_from(config, data_dir)
    if listen is not None:
        try:
            parse_endpoint(listen)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        settings.api.listen = listen
    settings.data_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    out.print(f"LogMaster API: http://{settings.api.listen}/api/v1", highlight=False)
    try:
        run_server(settings)
    except OSError as exc:
        raise fail(f"cannot serve the API on {settings.api.listen}: {exc}") from exc
