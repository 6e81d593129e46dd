"""Setting up: ``init`` (a data directory) and ``config`` (every setting explained)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from logmaster.cli.common import ConfigOpt, DataDirOpt, out, settings_from
from logmaster.config import describe


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
    from logmaster.archive.keys import KeyStore, fingerprint

    # Seals need a signing key from the first day on: one without a passphrase (0600), which
    # `logmaster keys rotate` or `keys import` replaces with the operator's own.
    store = KeyStore(root / "keys")
    if not store.exists():
        signer = store.init()
        out.print(
            f"created signing key {store.dir} (SHA-256 {fingerprint(signer.certificate)}); "
            "import your organisation's key with `logmaster keys import`",
            highlight=False,
        )
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
