"""``logmaster migrate-to-postgres``: move an embedded installation to PostgreSQL.

The work is :class:`logmaster.pgmigrate.Migration`; this module shows it (a progress bar per
table and index day, the count check as a table) and says what to put in the settings.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from logmaster.cli.common import ConfigOpt, DataDirOpt, err, fail, out, settings_from


def migrate_to_postgres(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The PostgreSQL database to fill: postgresql+psycopg://user@host:5432/db "
            "(create it first: createdb -O logmaster logmaster).",
        ),
    ],
    index_to: Annotated[
        str | None,
        typer.Option(
            "--index-to", help="Put the index in this database instead (default: the same as --to)."
        ),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="The target already holds LogMaster data: drop LogMaster's tables there first "
            "(everything in them is lost).",
        ),
    ] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Copy the SQLite metadata database (every table, ids and audit chain kept) and the SQLite
    index (events of every day, checkpoints, sessions) into PostgreSQL, then check the counts.

    Stop LogMaster first. The archive stays where it is; the source is left unchanged.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from logmaster.pgmigrate import Migration, MigrationError, config_lines

    settings = settings_from(config, data_dir)
    migration = Migration(settings, to, index_to, replace=replace)
    try:
        try:
            steps = migration.prepare()
            columns = (
                TextColumn("{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=err, transient=False) as bar:
                tasks = {s.name: bar.add_task(s.name, total=max(s.rows, 1)) for s in steps}
                empty = {s.name for s in steps if s.rows == 0}

                def advance(name: str, rows: int) -> None:
                    bar.advance(tasks[name], rows)

                counts = migration.run(advance)
                for name in empty:  # nothing to copy: show it done
                    bar.update(tasks[name], completed=1)
        except (MigrationError, SQLAlchemyError, OSError) as exc:
            raise fail(f"migration stopped: {getattr(exc, 'orig', None) or exc}") from exc
        except Exception as exc:  # psycopg errors of the index copy
            raise fail(f"migration stopped: {exc}") from exc
    finally:
        migration.close()
    table = Table("what", "source", "PostgreSQL", "", title="count check")
    for count in counts:
        table.add_row(
            count.what, str(count.source), str(count.target), "ok" if count.ok else "DIFFERENT"
        )
    out.print(table)
    out.print("[bold green]migration complete[/]: every count matches, the audit chain verifies.")
    out.print("\nPut this in the settings file (or LOGMASTER_DATABASE_URL in the environment):\n")
    for line in config_lines(to, index_to):
        out.print(f"    {escape(line)}", highlight=False)
    out.print(
        "\nThe index follows database_url unless [index] backend is set. Optionally add "
        'redis_url = "redis://127.0.0.1:6379/0" (live tail, sign-in counters, revocation across '
        "processes). Then `logmaster db upgrade` and start LogMaster."
    )
