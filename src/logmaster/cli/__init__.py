"""The ``logmaster`` command line (typer). Every command has ``--help``.

Commands take ``--config FILE`` (or ``LOGMASTER_CONFIG``) and ``--data-dir DIR``; flags override
the file and the environment. Errors the operator can fix are printed as one sentence and exit 2.
One module per group of commands; each is registered here in one line.
"""

from __future__ import annotations

from typing import Annotated

import typer

from logmaster import __version__
from logmaster.cli import (
    archive,
    audit,
    backup,
    db,
    devices,
    export,
    index,
    keys,
    loadgen,
    migrate,
    report,
    retention,
    running,
    seal,
    serve,
    setup,
    tsa,
    users,
)
from logmaster.cli.common import out

app = typer.Typer(
    help="LogMaster: syslog collection, signed archive, Law 5651 compliance.",
    no_args_is_help=True,
    add_completion=False,
)


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


app.command()(setup.init)
app.command("config")(setup.config_cmd)
app.command()(running.collect)
app.command()(running.run)
app.add_typer(devices.app, name="device")
app.add_typer(archive.app, name="archive")
app.command()(index.index)
app.command()(index.reindex)
app.command()(index.search)
app.command()(index.attribute)
app.command()(index.parse)
app.command()(loadgen.loadgen)
app.command()(seal.seal)
app.command()(seal.verify)
app.command()(serve.serve)
app.add_typer(users.app, name="user")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")
app.add_typer(tsa.app, name="tsa")
app.command()(export.export)
app.add_typer(retention.app, name="retention")
app.add_typer(retention.hold_app, name="hold")
app.command()(report.report)
app.add_typer(report.compliance_app, name="compliance")
app.command()(backup.backup)
app.command()(backup.restore)
app.add_typer(db.app, name="db")
app.command("migrate-to-postgres")(migrate.migrate_to_postgres)
