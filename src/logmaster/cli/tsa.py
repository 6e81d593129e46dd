"""``logmaster tsa ...``: the timestamp authorities (list, stamp a file, Kamu SM balance, serve the
built-in TSA)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, out, settings_from

app = typer.Typer(help="Timestamp authorities (zaman damgası).", no_args_is_help=True)

BUILTIN_LABEL = "built-in, not an accredited TSA (yerleşik, akredite olmayan)"


@app.command("list")
def tsa_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """The TSAs in the order they are tried."""
    settings = settings_from(config, data_dir)
    table = Table("#", "name", "kind", "url", "hash", "policy", "accredited")
    for i, server in enumerate(settings.tsa.servers, 1):
        table.add_row(
            str(i),
            server.name,
            server.kind,
            escape(server.url),
            server.hash_algorithm,
            server.policy or "-",
            "yes / evet" if server.accredited else "no / hayır",
        )
    if not settings.tsa.servers:
        if not settings.tsa.builtin:
            raise fail("no TSA configured and tsa.builtin is false: seals cannot be stamped")
        table.add_row(
            "1",
            "builtin",
            BUILTIN_LABEL,
            str(settings.data_dir / "tsa"),
            "sha256",
            "",
            "no / hayır",
        )
    out.print(table)


@app.command("stamp")
def tsa_stamp(
    file: Annotated[Path, typer.Argument(help="File to stamp.", exists=True, dir_okay=False)],
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write the .tsr (FILE.tsr).")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Stamp FILE with the configured TSAs; writes FILE.tsr and FILE.tsa-chain.pem."""
    from logmaster.archive.tsa import TsaError, stamper_from_settings

    settings = settings_from(config, data_dir)
    try:
        stamp = stamper_from_settings(settings).stamp(file.read_bytes())
    except TsaError as exc:
        raise fail(str(exc)) from exc
    tsr = output or file.with_name(file.name + ".tsr")
    chain = tsr.with_suffix(".tsa-chain.pem")
    tsr.write_bytes(stamp.response)
    chain.write_bytes(stamp.chain_pem)
    if stamp.accredited:
        label = ""
    else:
        label = f" — {BUILTIN_LABEL}" if stamp.tsa == "builtin" else " — not accredited"
    out.print(f"stamped by {stamp.tsa}{label}", soft_wrap=True)
    out.print(f"  time {stamp.gen_time:%d.%m.%Y %H:%M:%S} UTC, serial {stamp.serial}")
    out.print(
        f"  {tsr}  (openssl ts -verify -data {file} -in {tsr} -CAfile {chain})",
        soft_wrap=True,
        highlight=False,
    )


@app.command("balance")
def tsa_balance(
    name: Annotated[
        str | None, typer.Option("--tsa", help="Name of the Kamu SM TSA (default: the first).")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remaining credit of a Kamu SM account (kalan kontör)."""
    from logmaster.archive import kamusm
    from logmaster.archive.tsa import TsaError

    settings = settings_from(config, data_dir)
    candidates = [s for s in settings.tsa.servers if s.kind == "kamusm"]
    if name is not None:
        candidates = [s for s in candidates if s.name == name]
    if not candidates:
        raise fail(
            "no Kamu SM TSA configured"
            + (f" named {name!r}" if name else "")
            + ': add a [[tsa.servers]] entry with kind = "kamusm"'
        )
    server = candidates[0]
    try:
        credit = kamusm.balance(server)
    except TsaError as exc:
        raise fail(str(exc)) from exc
    out.print(f"{server.name}: {credit} timestamp credits left (kalan kontör: {credit})")


@app.command("serve")
def tsa_serve(
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="HOST:PORT (default: tsa.builtin_listen, 127.0.0.1:3180)."),
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the built-in TSA over HTTP (RFC 3161). Not an accredited TSA."""
    from logmaster.archive.tsa_server import BuiltinTsa, make_server
    from logmaster.endpoints import parse_endpoint

    settings = settings_from(config, data_dir)
    try:
        ep = parse_endpoint(listen or settings.tsa.builtin_listen)
    except ValueError as exc:
        raise fail(f"--listen: {exc}") from exc
    tsa = BuiltinTsa(settings.data_dir / "tsa")
    try:
        server = make_server(tsa, ep.host, ep.port)
    except OSError as exc:
        raise fail(f"cannot listen on {ep}: {exc.strerror}") from exc

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    out.print(f"{BUILTIN_LABEL} listening on http://{ep}/", highlight=False)
    out.print(f"  CA chain (-CAfile): {tsa.dir / 'chain.pem'}", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
