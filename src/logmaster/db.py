"""The metadata database: SQLAlchemy models, engine and Alembic migrations.

SQLite (WAL) in the data directory by default; PostgreSQL through psycopg 3 with the same models
and migrations. The archive never depends on this database: it holds the device registry and,
in later stages, accounts and the audit trail.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    String,
    create_engine,
    event,
    func,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Device(Base):
    """A sender of logs. Its ``slug`` names its archive folder and never changes."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64))
    # pending | approved | rejected | retired
    status: Mapped[str] = mapped_column(String(16), index=True)
    # When set, only messages whose syslog header carries this hostname match (relays).
    hostname: Mapped[str | None] = mapped_column(String(255), default=None)
    # Parser to use for this device instead of automatic detection (parsers.BY_NAME).
    format: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The node whose collector archives this device (several nodes on one database); NULL
    # until a collector has received it.
    node: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    sources: Mapped[list[DeviceSource]] = relationship(
        back_populates="device", cascade="all, delete-orphan", lazy="selectin"
    )


class DeviceSource(Base):
    """One sender address or network (CIDR) of a device."""

    __tablename__ = "device_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    cidr: Mapped[str] = mapped_column(String(64), index=True)
    device: Mapped[Device] = relationship(back_populates="sources")


class Node(Base):
    """A LogMaster node sharing this database: where its API answers, which key it signs with."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_url: Mapped[str | None] = mapped_column(String(500), default=None)
    # A fingerprint of the node's API signing key (never the key): nodes must share one.
    key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs for a multi-process server."""
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the collector write while the CLI and API read.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def sessions(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(url: str) -> None:
    """Bring the database schema to the newest revision (idempotent).

    Several processes start at once (collector, indexer processes, API workers), and two
    Alembic runs racing on a new database both try CREATE TABLE: one waits for the other,
    through an advisory lock on PostgreSQL and a file lock beside a SQLite database.
    """
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.engine import make_url

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    parsed = make_url(url)
    lock_path = Path(str(parsed.database) + ".migrate.lock")
    if (
        parsed.get_backend_name() == "sqlite"
        and parsed.database not in (None, "", ":memory:")
        # A missing directory: let SQLite report it as it always has (a clear CLI error).
        and lock_path.parent.is_dir()
    ):
        import fcntl

        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            command.upgrade(cfg, "head")
        return
    if parsed.get_backend_name() == "postgresql":
        from sqlalchemy import text

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                # Held by this session while Alembic migrates on its own connection; any fixed
                # number will do, only LogMaster's migrations take it.
                conn.execute(text("SELECT pg_advisory_lock(5651)"))
                try:
                    command.upgrade(cfg, "head")
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(5651)"))
        finally:
            engine.dispose()
        return
    command.upgrade(cfg, "head")


def registry_version(engine: Engine) -> tuple[Any, ...]:
    """A cheap fingerprint that changes whenever a device or source row changes."""
    from sqlalchemy import select

    with engine.connect() as conn:
        row = conn.execute(select(func.count(Device.id), func.max(Device.updated_at))).one()
        src = conn.execute(select(func.count(DeviceSource.id), func.max(DeviceSource.id))).one()
    return (*row, *src)
