"""Move an embedded installation (SQLite metadata + SQLite index) to PostgreSQL.

``logmaster migrate-to-postgres --to postgresql+psycopg://...`` (``cli/migrate.py``) drives a
:class:`Migration`:

1. Checks: the source is SQLite, the target PostgreSQL, no collector holds the data directory,
   and the target holds no LogMaster data (users, devices, audit entries, events ...) unless
   ``replace`` (then LogMaster's tables there are dropped first).
2. Metadata: the target is migrated to the newest Alembic revision, then every table of the
   source is copied in one transaction, in foreign-key order, ids as they are (so the audit
   chain, which hashes sequence numbers and contents, verifies unchanged; ``audit_head`` moves
   forward to the source's head). Rows the migrations seed (built-in roles) are replaced by the
   source's. Sequences are then set past the highest copied id.
3. Index (when the source index is SQLite): every day's events (ids kept: an event is still
   ``YYYY-MM-DD.N``) with that day's checkpoints and parse counts, in one transaction per day,
   then the sessions; ``events_id_seq`` moves past the highest id. File references stay plain
   (``device/YYYY/MM/DD.log``): in a shared index a plain reference means the node reading it.
4. Count check: rows per table, events and checkpoints per day, sessions; the audit chain is
   verified on the target. Any difference raises :class:`MigrationError`.

The archive is not touched: it stays where it is, and the index could be rebuilt from it
(``logmaster reindex``) instead of copied. Nothing is deleted from the source.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from logmaster.config import Settings
from logmaster.db import make_engine, migrate
from logmaster.index.fields import COLUMNS, ip_text
from logmaster.index.postgres import _clean, _clean_json
from logmaster.index.postgres_schema import (
    EVENT_COLUMNS,
    VERSION_TABLE,
    create_partition_sql,
    ensure_schema,
)
from logmaster.index.sqlite import DAY_FILE

CHUNK = 5000
# Tables the migrations fill themselves; their rows do not make a target "non-empty".
SEEDED = {"roles", "role_actions", "audit_head", "permission_state", "alembic_version"}
INDEX_TABLES = ("events", "checkpoints", "sessions", VERSION_TABLE)
_SESSION_COLUMNS = (
    "kind, device, start_us, end_us, expires_us, inner_ip, inner_port, outer_ip, outer_port, "
    "mac, user_name, transport, hostname, start_file, start_offset, day, end_file, end_offset, "
    "end_day"
)
_IP_AT = [i for i, c in enumerate(COLUMNS) if c.kind == "ip"]
_TEXT_AT = [i for i, c in enumerate(COLUMNS) if c.kind in ("text", "mac")]

Progress = Callable[[str, int], None]


class MigrationError(Exception):
    """The migration cannot start, or its result does not match the source."""


@dataclass(frozen=True)
class Step:
    """A unit the progress bar shows: a table, an index day, the sessions."""

    name: str
    rows: int


@dataclass(frozen=True)
class Count:
    """Rows of one thing in the source and in the target."""

    what: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


def libpq_url(url: str) -> str:
    """The psycopg spelling of a SQLAlchemy PostgreSQL URL."""
    return re.sub(r"^postgresql\+psycopg://", "postgresql://", url)


class Migration:
    """One move of ``settings``' embedded installation to ``target_url``."""

    def __init__(
        self,
        settings: Settings,
        target_url: str,
        index_url: str | None = None,
        replace: bool = False,
    ) -> None:
        self.settings = settings
        self.target_url = target_url
        self.index_url = libpq_url(index_url or target_url)
        self.replace = replace
        self._source: Engine | None = None
        self._target: Engine | None = None
        self._tables: list[sa.Table] = []
        self._source_tables: dict[str, sa.Table] = {}
        self._days: dict[dt.date, list[Path]] = {}

    # -- checks --------------------------------------------------------------------------------

    def prepare(self) -> list[Step]:
        """Check everything, migrate the target's schema; the steps :meth:`run` will do."""
        url = make_url(self.settings.db_url)
        if url.get_backend_name() != "sqlite":
            raise MigrationError(
                f"this installation already uses {url.get_backend_name()} for its metadata "
                "(database_url); migrate-to-postgres moves an embedded (SQLite) installation"
            )
        if not Path(str(url.database)).is_file():
            raise MigrationError(f"no metadata database at {url.database} (check --data-dir)")
        target = make_url(self.target_url)
        if target.get_backend_name() != "postgresql":
            raise MigrationError(
                f"--to must be a PostgreSQL URL (postgresql+psycopg://user@host/db), not "
                f"{target.get_backend_name()}"
            )
        if target.drivername == "postgresql":
            self.target_url = target.set(drivername="postgresql+psycopg").render_as_string(False)
        self._check_no_collector()
        migrate(self.settings.db_url)  # the source at the newest revision, like any start
        self._source = make_engine(self.settings.db_url)
        self._target = make_engine(self.target_url)
        if self.replace:
            self._drop_target()
        migrate(self.target_url)
        self._reflect()
        self._check_empty()
        self._days = self._index_days()
        steps = [Step(f"table {t.name}", self._count(self._source, t.name)) for t in self._tables]
        steps += [Step(f"index {day}", self._day_rows(day)) for day in sorted(self._days)]
        if self._days or self._session_files():
            steps.append(Step("index sessions", self._session_rows()))
        return steps

    def _check_no_collector(self) -> None:
        lock = self.settings.data_dir / "collector.lock"
        if not lock.exists():
            return
        with open(lock, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise MigrationError(
                    f"a collector is running on {self.settings.data_dir}: stop LogMaster "
                    "(collector, indexer, API) before migrating"
                ) from None
            fcntl.flock(f, fcntl.LOCK_UN)

    def _reflect(self) -> None:
        assert self._source is not None and self._target is not None
        source = sa.MetaData()
        source.reflect(self._source)
        target = sa.MetaData()
        target.reflect(self._target, only=lambda name, _md: not _index_table(name))
        names = {n for n in source.tables if n != "alembic_version"}
        missing = sorted(names - set(target.tables))
        if missing:
            raise MigrationError(f"the target lacks the table(s) {', '.join(missing)}")
        self._source_tables = {n: source.tables[n] for n in names}
        self._tables = [t for t in target.sorted_tables if t.name in names]

    def _check_empty(self) -> None:
        assert self._target is not None
        found = []
        with self._target.connect() as conn:
            for table in self._tables:
                if table.name in SEEDED:
                    continue
                if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                    found.append(table.name)
            head = conn.execute(sa.text("SELECT max(seq) FROM audit_head")).scalar()
        if head:
            found.append("audit_head")
        with psycopg.connect(self.index_url) as pg:
            for name in ("events", "checkpoints", "sessions"):
                exists = pg.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
                if exists and exists[0]:
                    row = pg.execute(f"SELECT EXISTS (SELECT 1 FROM {name})").fetchone()
                    if row and row[0]:
                        found.append(f"index {name}")
        if found:
            raise MigrationError(
                "the target database already holds LogMaster data (" + ", ".join(found) + "); "
                "use an empty database, or --replace to drop LogMaster's tables there first"
            )

    def _drop_target(self) -> None:
        """Drop LogMaster's tables (metadata and index) in the target; nothing else."""
        assert self._target is not None
        names = set(sa.inspect(self._target).get_table_names())
        ours = {n for n in names if n in self._known_tables()} | (names & set(INDEX_TABLES))
        with self._target.begin() as conn:
            for name in sorted(ours):
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
            conn.execute(sa.text("DROP SEQUENCE IF EXISTS events_id_seq"))
            for function in (
                "logmaster_audit_append_only",
                "logmaster_audit_head_forward",
                "logmaster_permission_bump",
            ):
                conn.execute(sa.text(f"DROP FUNCTION IF EXISTS {function}() CASCADE"))
        with psycopg.connect(self.index_url, autocommit=True) as pg:
            for name in INDEX_TABLES:
                pg.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
            pg.execute("DROP SEQUENCE IF EXISTS events_id_seq")

    def _known_tables(self) -> set[str]:
        assert self._source is not None
        return set(sa.inspect(self._source).get_table_names()) | {"alembic_version"}

    # -- running -------------------------------------------------------------------------------

    def run(self, progress: Progress) -> list[Count]:
        """Copy everything (after :meth:`prepare`); the counts, all checked equal."""
        self._copy_metadata(progress)
        if self._days or self._session_files():
            self._copy_index(progress)
        counts = self.counts()
        bad = [c for c in counts if not c.ok]
        if bad:
            raise MigrationError(
                "count check FAILED: "
                + "; ".join(f"{c.what}: source {c.source}, target {c.target}" for c in bad)
            )
        return counts

    def _copy_metadata(self, progress: Progress) -> None:
        assert self._source is not None and self._target is not None
        with self._target.begin() as dst, self._source.connect() as src:
            # Seeded rows go (children first); the source's come back with their own ids.
            for table in reversed(self._tables):
                if table.name != "audit_head":
                    dst.execute(table.delete())
            for table in self._tables:
                self._copy_table(src, dst, table, progress)
            self._advance_sequences(dst)

    def _copy_table(
        self, src: Connection, dst: Connection, table: sa.Table, progress: Progress
    ) -> None:
        source = self._source_tables[table.name]
        columns = [c.name for c in source.columns if c.name in table.columns]
        aware = {c.name for c in table.columns if isinstance(c.type, sa.DateTime)}
        order = list(source.primary_key.columns) or list(source.columns)
        result = src.execution_options(stream_results=True).execute(
            sa.select(*[source.c[n] for n in columns]).order_by(*order)
        )
        for chunk in result.partitions(CHUNK):
            rows = [
                {n: _utc(v) if n in aware else v for n, v in zip(columns, row, strict=True)}
                for row in chunk
            ]
            if table.name == "audit_head":
                for row in rows:
                    _move_head(dst, table, row)
            else:
                dst.execute(table.insert(), rows)
            progress(f"table {table.name}", len(rows))

    def _advance_sequences(self, dst: Connection) -> None:
        """Every serial/identity column's sequence past the highest copied value."""
        for table in self._tables:
            for column in table.primary_key.columns:
                if not isinstance(column.type, sa.Integer):
                    continue
                seq = dst.execute(
                    sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                    {"t": f'"{table.name}"', "c": column.name},
                ).scalar()
                if seq is None:
                    continue
                dst.execute(
                    sa.text(
                        f'SELECT setval(:s, COALESCE((SELECT max("{column.name}") '
                        f'FROM "{table.name}"), 0) + 1, false)'
                    ),
                    {"s": seq},
                )

    # -- the index -----------------------------------------------------------------------------

    def _index_days(self) -> dict[dt.date, list[Path]]:
        root = self.settings.index_dir
        days: dict[dt.date, list[Path]] = {}
        if self.settings.index.backend != "sqlite" or not root.is_dir():
            return days
        for path in sorted(root.glob("events-*.db")):
            m = DAY_FILE.search(path.name)
            if m:
                days.setdefault(dt.date.fromisoformat(m.group(1)), []).append(path)
        return days

    def _session_files(self) -> list[Path]:
        root = self.settings.index_dir
        if self.settings.index.backend != "sqlite" or not root.is_dir():
            return []
        return sorted(root.glob("sessions*.db"))

    def _day_rows(self, day: dt.date) -> int:
        return sum(_sqlite_count(p, "events") for p in self._days[day])

    def _session_rows(self) -> int:
        return sum(_sqlite_count(p, "sessions") for p in self._session_files())

    def _copy_index(self, progress: Progress) -> None:
        with psycopg.connect(self.index_url, autocommit=True) as pg:
            ensure_schema(pg)
            for day in sorted(self._days):
                pg.execute(create_partition_sql(day))
                with pg.transaction(), pg.cursor() as cur:
                    for path in self._days[day]:
                        self._copy_day_file(cur, day, path, progress)
            with pg.transaction(), pg.cursor() as cur:
                for path in self._session_files():
                    self._copy_sessions(cur, path, progress)
                # New events continue after the highest copied id (ids are unique per day).
                cur.execute(
                    "SELECT setval('events_id_seq', GREATEST((SELECT max(id) FROM events), 1))"
                )

    def _copy_day_file(
        self, cur: psycopg.Cursor[Any], day: dt.date, path: Path, progress: Progress
    ) -> None:
        with _read_only(path) as db:
            copy_sql = f"COPY events (day, id, {', '.join(EVENT_COLUMNS)}, extra) FROM STDIN"
            with cur.copy(copy_sql) as copy:
                rows = db.execute(
                    f"SELECT id, {', '.join(EVENT_COLUMNS)}, extra FROM events ORDER BY id"
                )
                done = 0
                for row in rows:
                    values = list(row[1:-1])
                    for i in _IP_AT:
                        if values[i] is not None:
                            values[i] = ip_text(values[i])
                    for i in _TEXT_AT:
                        values[i] = _clean(values[i])
                    copy.write_row([day, row[0], *values, _clean_json(row[-1])])
                    done += 1
                    if done % CHUNK == 0:
                        progress(f"index {day}", CHUNK)
                progress(f"index {day}", done % CHUNK)
            cur.executemany(
                "INSERT INTO checkpoints (file, day, log_offset, lines, failures) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(f, day, o, n, e) for f, o, n, e in db.execute(_CHECKPOINTS)],
            )

    def _copy_sessions(self, cur: psycopg.Cursor[Any], path: Path, progress: Progress) -> None:
        with (
            _read_only(path) as db,
            cur.copy(f"COPY sessions ({_SESSION_COLUMNS}) FROM STDIN") as copy,
        ):
            done = 0
            for row in db.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions ORDER BY id"):
                values = list(row)
                for i in (5, 7):  # inner_ip, outer_ip
                    if values[i] is not None:
                        values[i] = ip_text(values[i])
                copy.write_row(values)
                done += 1
            progress("index sessions", done)

    # -- the count check -----------------------------------------------------------------------

    def counts(self) -> list[Count]:
        """Source and target rows of every table, index day and the sessions; audit chain."""
        assert self._source is not None and self._target is not None
        found = [
            Count(
                f"table {t.name}",
                self._count(self._source, t.name),
                self._count(self._target, t.name),
            )
            for t in self._tables
        ]
        if self._days or self._session_files():
            with psycopg.connect(self.index_url) as pg:
                for day, paths in sorted(self._days.items()):
                    events = pg.execute("SELECT count(*) FROM events WHERE day = %s", (day,))
                    checkpoints = pg.execute(
                        "SELECT count(*) FROM checkpoints WHERE day = %s", (day,)
                    )
                    found.append(Count(f"index {day} events", self._day_rows(day), _one(events)))
                    found.append(
                        Count(
                            f"index {day} checkpoints",
                            sum(_sqlite_count(p, "checkpoints") for p in paths),
                            _one(checkpoints),
                        )
                    )
                found.append(
                    Count(
                        "index sessions",
                        self._session_rows(),
                        _one(pg.execute("SELECT count(*) FROM sessions")),
                    )
                )
        from logmaster.api.audit import verify_audit

        verdict = verify_audit(self._target)
        entries = self._count(self._source, "audit_entries") if self._has("audit_entries") else 0
        # A chain that does not verify on the target counts as a mismatch (-1 entries).
        found.append(Count("audit chain verified", entries, verdict.entries if verdict.ok else -1))
        return found

    def _has(self, name: str) -> bool:
        return name in self._source_tables

    @staticmethod
    def _count(engine: Engine | None, table: str) -> int:
        assert engine is not None
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar() or 0)

    def close(self) -> None:
        for engine in (self._source, self._target):
            if engine is not None:
                engine.dispose()


_CHECKPOINTS = "SELECT file, log_offset, lines, failures FROM checkpoints ORDER BY file"


def _move_head(dst: Connection, table: sa.Table, row: dict[str, Any]) -> None:
    """Set the audit head to the source's: its trigger lets it only move forward, and the
    migration's row (sequence 0, the genesis hash) is behind every real one."""
    if dst.execute(sa.select(table.c.id).where(table.c.id == row["id"])).first():
        dst.execute(table.update().where(table.c.id == row["id"]).values(**row))
    else:
        dst.execute(table.insert().values(**row))


def _utc(value: Any) -> Any:
    """SQLite keeps UTC times without an offset; PostgreSQL must not read them as local."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _index_table(name: str) -> bool:
    return name in INDEX_TABLES or name.startswith("events_")


def _one(cursor: psycopg.Cursor[Any]) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0


class _read_only:  # noqa: N801 (used as a context manager, like open())
    """A SQLite index file opened read-only (the source is never written)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *_exc: object) -> None:
        self.conn.close()


def _sqlite_count(path: Path, table: str) -> int:
    with _read_only(path) as db:
        row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def config_lines(target_url: str, index_url: str | None) -> Iterator[str]:
    """What to put in the settings after the migration."""
    shown = make_url(target_url).render_as_string(hide_password=True)
    yield f'database_url = "{shown}"'
    if index_url and libpq_url(index_url) != libpq_url(target_url):
        yield "[index]"
        yield 'backend = "postgres"'
        yield f'postgres_url = "{make_url(index_url).render_as_string(hide_password=True)}"'
