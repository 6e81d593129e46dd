"""``logmaster db upgrade|status``: the schema of the metadata database (Alembic) and index.

Every server process migrates on start anyway (:func:`logmaster.db.migrate`, serialised between
processes); ``db upgrade`` does it on purpose, before the services start after an update, and
says from which revision to which. With the PostgreSQL index it also creates or checks the
index tables.
"""

from __future__ import annotations

import typer
from rich.markup import escape

from logmaster.cli.common import ConfigOpt, DataDirOpt, fail, out, settings_from
from logmaster.config import Settings

app = typer.Typer(help="The metadata database: migrations and their state.", no_args_is_help=True)


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def current_revision(url: str) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    from logmaster.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            revision: str | None = MigrationContext.configure(conn).get_current_revision()
            return revision
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision this LogMaster knows."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from logmaster.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def _database_error(settings: Settings, exc: Exception) -> typer.Exit:
    reason = getattr(exc, "orig", None) or exc
    return fail(
        f"cannot reach the metadata database {shown_url(settings.db_url)}: {reason} "
        "(check database_url / --data-dir)"
    )


def _index_schema(settings: Settings) -> str | None:
    """Create or check the PostgreSQL index tables; a line saying which (None: SQLite index)."""
    if settings.index.backend != "postgres":
        return None
    from logmaster.index.postgres import PostgresIndex
    from logmaster.index.postgres_schema import SCHEMA_VERSION

    index = PostgresIndex.from_settings(settings)
    index.close()
    url = shown_url(index.url.replace("postgresql://", "postgresql+psycopg://", 1))
    return f"index {url}: schema version {SCHEMA_VERSION}"


@app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run the Alembic migrations up to the newest revision (and create the PostgreSQL index
    tables); prints the revision before and after."""
    from sqlalchemy.exc import SQLAlchemyError

    from logmaster.db import migrate

    settings = settings_from(config, data_dir)
    where = shown_url(settings.db_url)
    settings.data_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    try:
        before = current_revision(settings.db_url)
        migrate(settings.db_url)
        after = current_revision(settings.db_url)
        index_line = _index_schema(settings)
    except (SQLAlchemyError, OSError) as exc:
        raise _database_error(settings, exc) from exc
    except Exception as exc:  # psycopg errors of the index, a newer index schema
        raise fail(f"cannot prepare the index: {exc}") from exc
    if before == after:
        out.print(f"metadata database {escape(where)}: at revision {after} (newest), nothing to do")
    else:
        out.print(
            f"metadata database {escape(where)}: upgraded from revision {before or '(empty)'} "
            f"to {after}"
        )
    if index_line:
        out.print(escape(index_line))


@app.command("status")
def db_status(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print the revision of the metadata database and the newest one; exit 1 when behind."""
    from sqlalchemy.exc import SQLAlchemyError

    settings = settings_from(config, data_dir)
    try:
        current = current_revision(settings.db_url)
    except (SQLAlchemyError, OSError) as exc:
        raise _database_error(settings, exc) from exc
    head = head_revision()
    out.print(
        f"metadata database {escape(shown_url(settings.db_url))}: revision "
        f"{current or '(empty)'}, newest {head}; index backend {settings.index.backend}"
    )
    if current != head:
        out.print("run `logmaster db upgrade`")
        raise typer.Exit(1)
