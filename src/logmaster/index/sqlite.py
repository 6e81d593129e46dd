"""SQLite index: one database file per archive day and shard, FTS5 over the message, WAL.

``<data>/index/events-YYYY-MM-DD.db`` holds the events of that archive day, the checkpoints of
that day's archive files and their parse statistics, so a day's rows and checkpoints commit in
one transaction and retention is a file removal. ``<data>/index/sessions.db`` holds the session
intervals, written before the day transaction with idempotent statements (see ``base.py``).

Shards: SQLite has one writer per file, and one writer process could not keep up with 20,000
events/s on two cores (parsing alone takes most of a core). With ``shards`` > 1 every device
belongs to one shard (a hash of its slug, :func:`shard_of`), and each shard has its own files,
``events-YYYY-MM-DD.K.db`` and ``sessions.K.db``, so one indexer process per shard parses and
writes its devices without waiting for the others. Session operations never cross devices, so
they stay inside a shard. Event ids are ``n * 16 + K``: unique across the shards of a day, so a
(day, id) pair still names one event and cursors order ties across shards. The shard count is
fixed when the index is created (``layout.json``); readers open every shard and merge.

A query over a time range opens the day files from one day before to one day after it (an
archive day is the device's local day, which can reach into the neighbouring UTC days) and
filters on ``ts``; results from the days are merged newest first.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import sqlite3
from collections import OrderedDict
from pathlib import Path
from typing import Any

from logmaster.config import Settings
from logmaster.index.base import (
    Batch,
    Hit,
    IndexBackend,
    SearchPage,
    SearchRequest,
    Session,
    SessionKind,
    SessionOp,
    shard_of,
)
from logmaster.index.fields import COLUMNS, cidr_range, from_micros, ip_key, ip_text, micros
from logmaster.index.sql import Compiler

DAY_FILE = re.compile(r"events-(\d{4}-\d\d-\d\d)(?:\.(\d+))?\.db$")
MAX_OPEN_DAYS = 64
MAX_SHARDS = 16  # event ids carry the shard in their low 4 bits
LAYOUT = "layout.json"
# Sessions longer than this are not looked for (bounds the scan of an attribution query).
MAX_SESSION_US = 8 * 86_400 * 1_000_000

_TYPES = {"ip": "BLOB", "int": "INTEGER", "time": "INTEGER", "text": "TEXT", "mac": "TEXT"}
_EVENT_COLUMNS = [c.name for c in COLUMNS]
_IP_POSITIONS = [i for i, c in enumerate(COLUMNS) if c.kind == "ip"]
_DEVICE_AT = _EVENT_COLUMNS.index("device")

# The per-field indexes are partial (WHERE col IS NOT NULL): most lines have no user, client or
# NAT address, and a full index would still store a NULL entry for each of them. Measured on the
# bench's mixed lines (bench/index.py), partial indexes cut the write cost per event by about a
# quarter. SQLite uses them for any comparison on the column (col = ?, BETWEEN), which implies
# NOT NULL. Day files made before keep their full indexes; both answer the same queries.
DAY_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    {", ".join(f"{c.name} {_TYPES[c.kind]}" for c in COLUMNS)},
    extra TEXT
);
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(
    message, content='events', content_rowid='id'
);
CREATE TABLE IF NOT EXISTS checkpoints (
    file TEXT PRIMARY KEY, log_offset INTEGER NOT NULL,
    lines INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_device ON events (device, ts);
CREATE INDEX IF NOT EXISTS events_src_ip ON events (src_ip, ts) WHERE src_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_dst_ip ON events (dst_ip, ts) WHERE dst_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_src_nat_ip ON events (src_nat_ip, ts)
    WHERE src_nat_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_client_ip ON events (client_ip, ts) WHERE client_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_user ON events (user_name, ts) WHERE user_name IS NOT NULL;
"""

SESSION_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL, device TEXT NOT NULL,
    start_us INTEGER NOT NULL, end_us INTEGER, expires_us INTEGER,
    inner_ip BLOB, inner_port INTEGER, outer_ip BLOB, outer_port INTEGER,
    mac TEXT, user_name TEXT, transport TEXT, hostname TEXT,
    start_file TEXT NOT NULL, start_offset INTEGER NOT NULL, day TEXT NOT NULL,
    end_file TEXT, end_offset INTEGER, end_day TEXT,
    UNIQUE (kind, start_file, start_offset)
);
DROP INDEX IF EXISTS sessions_outer;
CREATE INDEX IF NOT EXISTS sessions_outer_port ON sessions (kind, outer_ip, outer_port, start_us)
    WHERE outer_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_inner ON sessions (kind, inner_ip, start_us)
    WHERE inner_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_end_ref ON sessions (end_file, end_offset)
    WHERE end_file IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_mac ON sessions (kind, mac, start_us) WHERE mac IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (kind, user_name, start_us)
    WHERE user_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_day ON sessions (day);
"""


def _connect(path: Path, synchronous: str = "off") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    # OFF (default): a committed batch survives a crash or kill -9 of the indexer, not a power
    # loss of the machine, which may need `logmaster reindex`. The archive, not the index, is
    # the record. Measured at 20,000 msg/s: 17,300 events/s indexed with OFF, 14,800 with
    # NORMAL (bench/index.py --live).
    conn.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'normal' else 'OFF'}")
    conn.execute("PRAGMA cache_size=-65536")
    # The default checkpoint every 1,000 pages (4 MB) means several WAL checkpoints - each with
    # fsyncs - per second at 20,000 events/s; measured, that was a third of the indexer's time.
    # 64 MB between checkpoints keeps the same I/O with a sixteenth of the syncs.
    conn.execute("PRAGMA wal_autocheckpoint=16384")
    conn.create_function("lm_number", 2, _number, deterministic=True)
    # SQLite's own lower() folds ASCII only, so user:ayşe missed "AYŞE" (PostgreSQL finds it).
    conn.create_function("lower", 1, _lower, deterministic=True)
    return conn


def _lower(value: Any) -> Any:
    if isinstance(value, str):
        # Simple case mapping like PostgreSQL's: "İ" -> "i", not "i" + combining dot.
        return value.lower().replace("i\u0307", "i")
    if value is None or isinstance(value, bytes):
        return value
    return str(value)  # numbers from json_extract compare as text, as with the built-in


# A string that reads as a number (the same grammar as postgres.py's NUMBER_RE).
_NUMBER = re.compile(r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?")


def _number(json_type: str | None, value: Any) -> float | None:
    """An extra field's value as a number for ranges; None (no match) when it is not one.

    CAST(... AS REAL) made "n/a" 0.0, so ``field:<10`` matched every non-numeric value.
    """
    if json_type in ("integer", "real"):
        return float(value)
    if json_type == "text" and _NUMBER.fullmatch(value):
        return float(value)
    return None


# A word with more matches than this in a day file is not used to find rows: its matches
# become a set that rows read along a time or device index (newest first, stopping at the page
# size) are checked against. Fetching every match by id and sorting costs about 7 µs a match;
# this costs a full page's walk instead. Measured on a 50,000-event day file with the API's
# device filter: a word in 11,500 events 83 -> 6-10 ms, in 34,000 events 211 -> 13-16 ms.
COMMON_WORD = 1_000


class SqliteCompiler(Compiler):
    def __init__(self, conn: sqlite3.Connection | None = None) -> None:
        super().__init__()
        self.conn = conn

    def ip_param(self, text: str) -> Any:
        return ip_key(text)

    def ip_range(self, cidr: str) -> tuple[str, str]:
        low, high = cidr_range(cidr)
        return self.bind(low), self.bind(high)

    def extra_text(self, field: str) -> str:
        return f"json_extract(extra, {self.bind(_json_path(field))})"

    def extra_number(self, field: str) -> str:
        path = _json_path(field)
        kind = f"json_type(extra, {self.bind(path)})"
        return f"lm_number({kind}, json_extract(extra, {self.bind(path)}))"

    def fulltext(self, tokens: list[str], prefix: bool) -> str:
        phrase = '"' + " ".join(t.replace('"', '""') for t in tokens) + '"'
        if prefix:
            phrase += "*"
        matches = f"(SELECT rowid FROM events_fts WHERE events_fts MATCH {self.bind(phrase)})"
        if self._common(phrase):
            # "+id" keeps the planner from fetching every match by id (then sorting them all):
            # the matches are only a membership test for rows read in index order. Probing
            # FTS5 once per row (EXISTS ... rowid = events.id) was worse still: about 250 µs
            # a probe, every probe re-seeking the word's doclist.
            return f"+id IN {matches}"
        return f"id IN {matches}"

    def _common(self, phrase: str) -> bool:
        if self.conn is None:
            return False
        try:
            (n,) = self.conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM events_fts WHERE events_fts MATCH ? LIMIT ?)",
                (phrase, COMMON_WORD + 1),
            ).fetchone()
        except sqlite3.OperationalError:
            return False  # the query itself will report the error
        return bool(n > COMMON_WORD)


def _json_path(field: str) -> str:
    return '$."' + field.replace('"', '\\"') + '"'


def _file_device(file: str) -> str:
    return file.split("/", 1)[0]  # archive paths start with the device slug


def layout_shards(root: Path, wanted: int) -> int:
    """The index's shard count: ``wanted`` for a new index, the recorded one afterwards.

    Changing the setting later does not move events between files (that would need a reindex);
    the recorded count keeps every reader and writer on the same layout.
    """
    path = root / LAYOUT
    try:
        return int(json.loads(path.read_text())["shards"])
    except FileNotFoundError:
        pass
    wanted = max(1, min(MAX_SHARDS, wanted))
    if any(root.glob("events-*.db")):
        wanted = 1  # an index made before shards existed
    tmp = root / f".{LAYOUT}.{os.getpid()}"
    tmp.write_text(json.dumps({"shards": wanted}) + "\n")
    try:
        os.link(tmp, path)  # atomic and exclusive: two processes starting at once agree
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return int(json.loads(path.read_text())["shards"])


class SqliteIndex(IndexBackend):
    name = "sqlite"

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteIndex:
        return cls(
            settings.index_dir,
            settings.index.sqlite_synchronous,
            shards=max(1, settings.index.workers),
        )

    def __init__(self, root: Path, synchronous: str = "off", shards: int = 1) -> None:
        self.root = root
        self.synchronous = synchronous
        root.mkdir(mode=0o750, parents=True, exist_ok=True)
        self.shards = layout_shards(root, shards)
        self._days: OrderedDict[tuple[dt.date, int], sqlite3.Connection] = OrderedDict()
        self._session_dbs: dict[int, sqlite3.Connection] = {}

    # -- files ------------------------------------------------------------------------------

    def _path(self, day: dt.date, shard: int) -> Path:
        if self.shards == 1:
            return self.root / f"events-{day.isoformat()}.db"
        return self.root / f"events-{day.isoformat()}.{shard}.db"

    def _sessions(self, shard: int) -> sqlite3.Connection:
        conn = self._session_dbs.get(shard)
        if conn is None:
            name = "sessions.db" if self.shards == 1 else f"sessions.{shard}.db"
            conn = _connect(self.root / name, self.synchronous)
            conn.executescript(SESSION_SCHEMA)
            self._session_dbs[shard] = conn
        return conn

    def _db(self, day: dt.date, shard: int, create: bool = False) -> sqlite3.Connection | None:
        key = (day, shard)
        conn = self._days.get(key)
        if conn is not None:
            self._days.move_to_end(key)
            return conn
        path = self._path(day, shard)
        if not create and not path.exists():
            return None
        conn = _connect(path, self.synchronous)
        conn.executescript(DAY_SCHEMA)
        self._days[key] = conn
        while len(self._days) > MAX_OPEN_DAYS:
            _, old = self._days.popitem(last=False)
            old.close()
        return conn

    def _day_dbs(self, day: dt.date) -> list[tuple[int, sqlite3.Connection]]:
        found = []
        for shard in range(self.shards):
            conn = self._db(day, shard)
            if conn is not None:
                found.append((shard, conn))
        return found

    def days(self) -> list[dt.date]:
        out = set()
        for path in self.root.glob("events-*.db"):
            m = DAY_FILE.search(path.name)
            if m:
                out.add(dt.date.fromisoformat(m.group(1)))
        return sorted(out)

    # -- writing ----------------------------------------------------------------------------

    def checkpoint(self, file: str, day: dt.date) -> int:
        conn = self._db(day, shard_of(_file_device(file), self.shards))
        if conn is None:
            return 0
        row = conn.execute("SELECT log_offset FROM checkpoints WHERE file = ?", (file,)).fetchone()
        return int(row[0]) if row else 0

    def write(self, batch: Batch) -> None:
        shards = self.shards
        if batch.sessions:
            by_shard: dict[int, list[SessionOp]] = {}
            for op in batch.sessions:
                by_shard.setdefault(shard_of(op.device, shards), []).append(op)
            for shard, ops in sorted(by_shard.items()):
                self._apply_sessions(self._sessions(shard), ops)
        by_day: dict[tuple[dt.date, int], list[list[Any]]] = {}
        placeholders = ", ".join("?" for _ in _EVENT_COLUMNS)
        ip_positions = _IP_POSITIONS
        device_at = _DEVICE_AT
        shard_by_device: dict[str, int] = {}  # a batch holds a few devices' lines
        for ev in batch.events:
            values = ev.row.copy()
            for i in ip_positions:
                if values[i] is not None:
                    values[i] = ip_key(values[i])
            values.append(ev.extra)
            device = values[device_at] or ""
            if device not in shard_by_device:
                shard_by_device[device] = shard_of(device, shards)
            by_day.setdefault((ev.day, shard_by_device[device]), []).append(values)
        files: dict[tuple[dt.date, int], list[tuple[str, int, int, int]]] = {}
        for file, (fday, offset, lines, failures) in batch.files.items():
            key = (fday, shard_of(_file_device(file), shards))
            files.setdefault(key, []).append((file, offset, lines, failures))
        msg_index = _EVENT_COLUMNS.index("message")
        for day, shard in sorted(set(by_day) | set(files)):
            conn = self._db(day, shard, create=True)
            assert conn is not None
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = by_day.get((day, shard), [])
                if rows:
                    (top,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
                    ids = [
                        ((top // MAX_SHARDS) + i + 1) * MAX_SHARDS + shard for i in range(len(rows))
                    ]
                    conn.executemany(
                        f"INSERT INTO events (id, {', '.join(_EVENT_COLUMNS)}, extra) "
                        f"VALUES (?, {placeholders}, ?)",
                        ((rid, *r) for rid, r in zip(ids, rows, strict=True)),
                    )
                    conn.executemany(
                        "INSERT INTO events_fts (rowid, message) VALUES (?, ?)",
                        ((rid, r[msg_index]) for rid, r in zip(ids, rows, strict=True)),
                    )
                for file, offset, lines, failures in files.get((day, shard), []):
                    conn.execute(
                        "INSERT INTO checkpoints (file, log_offset, lines, failures) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (file) DO UPDATE SET "
                        "log_offset = excluded.log_offset, lines = lines + excluded.lines, "
                        "failures = failures + excluded.failures",
                        (file, offset, lines, failures),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _apply_sessions(self, conn: sqlite3.Connection, ops: list[SessionOp]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Runs of starts (most operations: every NAT line opens one) go in one statement;
            # order is kept, as a close or renewal may refer to a start just before it.
            run: list[SessionOp] = []
            for op in ops:
                if op.op in ("open", "span"):
                    run.append(op)
                    continue
                if run:
                    _insert_starts(conn, run)
                    run = []
                _apply(conn, op)
            if run:
                _insert_starts(conn, run)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- reading ----------------------------------------------------------------------------

    def _candidate_days(self, request: SearchRequest) -> list[dt.date]:
        first = request.start.astimezone(dt.UTC).date() - dt.timedelta(days=1)
        last = request.end.astimezone(dt.UTC).date() + dt.timedelta(days=1)
        return [d for d in reversed(self.days()) if first <= d <= last]

    def _candidate_dbs(self, request: SearchRequest) -> list[tuple[dt.date, sqlite3.Connection]]:
        return [
            (day, conn) for day in self._candidate_days(request) for _, conn in self._day_dbs(day)
        ]

    def _where(
        self, request: SearchRequest, conn: sqlite3.Connection | None = None
    ) -> tuple[str, list[Any]]:
        comp = SqliteCompiler(conn)
        cond = comp.compile(request.query)
        where = f"ts >= ? AND ts <= ? AND {cond}"
        params: list[Any] = [micros(request.start), micros(request.end), *comp.params]
        if request.devices is not None:
            if not request.devices:
                return "0", []
            marks = ", ".join("?" for _ in request.devices)
            where += f" AND device IN ({marks})"
            params.extend(sorted(request.devices))
        return where, params

    def search(self, request: SearchRequest) -> SearchPage:
        cursor = _decode_cursor(request.cursor)
        found: list[tuple[int, dt.date, int, dict[str, Any]]] = []
        newest = micros(request.end) if cursor is None else min(micros(request.end), cursor[0])
        key = lambda t: (t[0], t[1], t[2])  # noqa: E731 - the sort key, used twice
        for day, conn in self._candidate_dbs(request):
            if len(found) > request.limit:
                # A full page is already newer than anything this day file holds: skip it.
                # A 7-day query usually reads one or two day files, not nine.
                found.sort(key=key, reverse=True)
                del found[request.limit + 1 :]
                (top,) = conn.execute(
                    "SELECT max(ts) FROM events WHERE ts <= ?", (newest,)
                ).fetchone()
                if top is None or top < found[-1][0]:
                    continue
            where, params = self._where(request, conn)
            extra_cond, extra_params = "", []
            if cursor is not None:
                c_ts, c_day, c_id = cursor
                if day < c_day:
                    extra_cond, extra_params = " AND ts <= ?", [c_ts]
                elif day == c_day:
                    extra_cond, extra_params = (
                        " AND (ts < ? OR (ts = ? AND id < ?))",
                        [c_ts, c_ts, c_id],
                    )
                else:
                    extra_cond, extra_params = " AND ts < ?", [c_ts]
            sql = (
                f"SELECT * FROM events WHERE {where}{extra_cond} ORDER BY ts DESC, id DESC LIMIT ?"
            )
            cur = conn.execute(sql, [*params, *extra_params, request.limit + 1])
            names = [d[0] for d in cur.description]
            for values in cur:
                row = dict(zip(names, values, strict=True))
                found.append((row["ts"], day, row["id"], row))
        found.sort(key=key, reverse=True)
        page = found[: request.limit]
        hits = [Hit(day, rid, row_to_event(row)) for _, day, rid, row in page]
        next_cursor = None
        if len(found) > request.limit and page:
            ts, day, rid, _ = page[-1]
            next_cursor = _encode_cursor(ts, day, rid)
        return SearchPage(hits, next_cursor)

    def histogram(self, request: SearchRequest, buckets: int) -> list[tuple[dt.datetime, int]]:
        where, params = self._where(request)
        start, end = micros(request.start), micros(request.end)
        width = max(1, (end - start + buckets) // buckets)
        counts = [0] * buckets
        for _day, conn in self._candidate_dbs(request):
            sql = f"SELECT (ts - ?) / ? AS b, count(*) FROM events WHERE {where} GROUP BY b"
            for b, n in conn.execute(sql, [start, width, *params]):
                if 0 <= b < buckets:
                    counts[b] += n
        return [(from_micros(start + i * width), n) for i, n in enumerate(counts)]

    def device_counts(self, request: SearchRequest) -> dict[str, int]:
        where, params = self._where(request)
        out: dict[str, int] = {}
        for _day, conn in self._candidate_dbs(request):
            sql = f"SELECT device, count(*) FROM events WHERE {where} GROUP BY device"
            for device, n in conn.execute(sql, params):
                out[device] = out.get(device, 0) + n
        return out

    def get(self, day: dt.date, event_id: int) -> dict[str, Any] | None:
        shard = event_id % MAX_SHARDS
        conn = self._db(day, shard) if event_id > 0 and shard < self.shards else None
        if conn is None:
            return None
        cur = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,))
        values = cur.fetchone()
        if values is None:
            return None
        return row_to_event(dict(zip([d[0] for d in cur.description], values, strict=True)))

    def sessions(
        self,
        kind: SessionKind,
        start: dt.datetime,
        end: dt.datetime,
        *,
        outer_ip: str | None = None,
        outer_port: int | None = None,
        inner_ip: str | None = None,
        mac: str | None = None,
        user: str | None = None,
    ) -> list[Session]:
        lo, hi = micros(start), micros(end)
        conds = [
            "kind = ?",
            "start_us <= ?",
            "start_us >= ?",
            "COALESCE(end_us, expires_us, start_us) >= ?",
        ]
        params: list[Any] = [kind, hi, lo - MAX_SESSION_US, lo]
        for col, value in (("outer_ip", outer_ip), ("inner_ip", inner_ip)):
            if value is not None:
                conds.append(f"{col} = ?")
                params.append(ip_key(value))
        keys: tuple[tuple[str, int | str | None], ...] = (("outer_port", outer_port), ("mac", mac))
        for col, key in keys:
            if key is not None:
                conds.append(f"{col} = ?")
                params.append(key)
        if user is not None:
            conds.append("lower(user_name) = ?")
            params.append(user.lower())
        found: list[tuple[int, int, int, Session]] = []
        for shard in range(self.shards):
            cur = self._sessions(shard).execute(
                f"SELECT * FROM sessions WHERE {' AND '.join(conds)} ORDER BY start_us, id", params
            )
            names = [d[0] for d in cur.description]
            for v in cur:
                row = dict(zip(names, v, strict=True))
                found.append((row["start_us"], shard, row["id"], _session(row)))
        found.sort(key=lambda t: t[:3])
        return [t[3] for t in found]

    def parse_stats(self, day: dt.date) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for _, conn in self._day_dbs(day):
            for f, n, e in conn.execute("SELECT file, lines, failures FROM checkpoints"):
                out[f] = (n, e)
        return out

    def drop_days(self, first: dt.date, last: dt.date) -> None:
        for day in self.days():
            if first <= day <= last:
                for shard in range(self.shards):
                    conn = self._days.pop((day, shard), None)
                    if conn is not None:
                        conn.close()
                    for suffix in ("", "-wal", "-shm"):
                        Path(str(self._path(day, shard)) + suffix).unlink(missing_ok=True)
        lo, hi = first.isoformat(), last.isoformat()
        for shard in range(self.shards):
            conn = self._sessions(shard)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM sessions WHERE day BETWEEN ? AND ?", (lo, hi))
            conn.execute(
                "UPDATE sessions SET end_us = NULL, end_file = NULL, end_offset = NULL, "
                "end_day = NULL WHERE end_day BETWEEN ? AND ?",
                (lo, hi),
            )
            conn.execute("COMMIT")

    def close(self) -> None:
        for conn in self._days.values():
            conn.close()
        self._days.clear()
        for conn in self._session_dbs.values():
            conn.close()
        self._session_dbs.clear()


# -- sessions -----------------------------------------------------------------------------------


def _key(value: str | None) -> bytes | None:
    return ip_key(value) if value else None


_INSERT_START = (
    "INSERT OR IGNORE INTO sessions (kind, device, start_us, end_us, expires_us, "
    "inner_ip, inner_port, outer_ip, outer_port, mac, user_name, transport, hostname, "
    "start_file, start_offset, day, end_file, end_offset, end_day) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _start_values(op: SessionOp) -> tuple[Any, ...]:
    span = op.op == "span"
    day = op.day.isoformat()
    return (
        op.kind,
        op.device,
        op.at,
        op.end,
        op.expires,
        _key(op.inner_ip),
        op.inner_port,
        _key(op.outer_ip),
        op.outer_port,
        op.mac,
        op.user,
        op.transport,
        op.hostname,
        op.ref_file,
        op.ref_offset,
        day,
        op.ref_file if span else None,
        op.ref_offset if span else None,
        day if span else None,
    )


def _insert_starts(conn: sqlite3.Connection, ops: list[SessionOp]) -> None:
    conn.executemany(_INSERT_START, [_start_values(op) for op in ops])


def _apply(conn: sqlite3.Connection, op: SessionOp) -> None:
    base = (op.kind, op.device)
    if op.op in ("open", "span"):
        conn.execute(_INSERT_START, _start_values(op))
        return
    match, params = _match_keys(op)
    if op.op == "close":
        # The newest open session with these keys, or the one this very line closed before
        # (a replayed batch): closing it again changes nothing. That one comes first, else a
        # replay would also close a session opened since by a later line with an earlier time.
        if conn.execute(
            "SELECT 1 FROM sessions WHERE end_file = ? AND end_offset = ? AND kind = ?",
            (op.ref_file, op.ref_offset, op.kind),
        ).fetchone():
            return
        # Newest first along an index (kind, key, start_us), bounded to the longest session
        # looked for: a close costs a few index steps however many sessions a key has had.
        row = conn.execute(
            f"SELECT id FROM sessions WHERE kind = ? AND device = ? AND start_us <= ? "
            f"AND start_us >= ? {match} AND end_us IS NULL "
            "ORDER BY start_us DESC, id DESC LIMIT 1",
            (*base, op.at, op.at - MAX_SESSION_US, *params),
        ).fetchone()
        if row is not None:
            conn.execute(
                "UPDATE sessions SET end_us = ?, end_file = ?, end_offset = ?, "
                "end_day = ? WHERE id = ?",
                (op.at, op.ref_file, op.ref_offset, op.day.isoformat(), row[0]),
            )
        return
    # renew: a lease for inner_ip. Same MAC: push its expiry; another MAC: the address moved.
    # Leases open at that moment, not only those open now: replayed after a later line closed
    # the lease, a renewal must find it again rather than open a second lease.
    rows = conn.execute(
        "SELECT id, mac, start_file, start_offset, end_us FROM sessions WHERE kind = ? "
        "AND device = ? AND inner_ip = ? AND start_us <= ? AND (end_us IS NULL OR end_us > ?) "
        "ORDER BY start_us DESC, id DESC",
        (*base, _key(op.inner_ip), op.at, op.at),
    ).fetchall()
    for sid, mac, sfile, soffset, end_us in rows:
        if (sfile, soffset) == (op.ref_file, op.ref_offset):
            return  # replay of the line that opened it
        if mac == op.mac:
            conn.execute(
                # MAX(x, NULL) is NULL: a renewal without an expiry keeps the old one.
                "UPDATE sessions SET expires_us = COALESCE(MAX(expires_us, ?), expires_us, ?), "
                "hostname = COALESCE(?, hostname) WHERE id = ?",
                (op.expires, op.expires, op.hostname, sid),
            )
            return
        if end_us is None:
            conn.execute(
                "UPDATE sessions SET end_us = ?, end_file = ?, end_offset = ?, end_day = ? "
                "WHERE id = ?",
                (op.at, op.ref_file, op.ref_offset, op.day.isoformat(), sid),
            )
    _apply(
        conn,
        SessionOp(
            "open",
            op.kind,
            op.device,
            op.at,
            op.ref_file,
            op.ref_offset,
            op.day,
            expires=op.expires,
            inner_ip=op.inner_ip,
            mac=op.mac,
            hostname=op.hostname,
        ),
    )


def _match_keys(op: SessionOp) -> tuple[str, list[Any]]:
    conds: list[str] = []
    params: list[Any] = []
    for col, value in (("inner_ip", _key(op.inner_ip)), ("outer_ip", _key(op.outer_ip))):
        if value is not None:
            conds.append(f"AND {col} = ?")
            params.append(value)
    for col, value2 in (
        ("inner_port", op.inner_port),
        ("outer_port", op.outer_port),
        ("user_name", op.user),
    ):
        if value2 is not None:
            conds.append(f"AND {col} = ?")
            params.append(value2)
    return " ".join(conds), params


def _session(row: dict[str, Any]) -> Session:
    def t(v: int | None) -> dt.datetime | None:
        return from_micros(v) if v is not None else None

    return Session(
        kind=row["kind"],
        device=row["device"],
        start=from_micros(row["start_us"]),
        end=t(row["end_us"]),
        expires=t(row["expires_us"]),
        inner_ip=ip_text(row["inner_ip"]) if row["inner_ip"] else None,
        inner_port=row["inner_port"],
        outer_ip=ip_text(row["outer_ip"]) if row["outer_ip"] else None,
        outer_port=row["outer_port"],
        mac=row["mac"],
        user=row["user_name"],
        transport=row["transport"],
        hostname=row["hostname"],
        start_ref=(row["start_file"], row["start_offset"]),
        end_ref=(row["end_file"], row["end_offset"]) if row["end_file"] else None,
    )


# -- rows and cursors ---------------------------------------------------------------------------


def row_to_event(row: dict[str, Any]) -> dict[str, Any]:
    """An index row back to flat ECS fields (times as aware datetimes, IPs as text)."""
    event: dict[str, Any] = {}
    for col in COLUMNS:
        value = row.get(col.name)
        if value is None:
            continue
        if col.kind == "ip":
            value = ip_text(value) if isinstance(value, bytes) else str(value)
        elif col.kind == "time":
            value = from_micros(value)
        event[col.field] = value
    extra = row.get("extra")
    if extra:
        event.update(json.loads(extra))
    return event


def _encode_cursor(ts: int, day: dt.date, rid: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([ts, day.isoformat(), rid]).encode()).decode()


def _decode_cursor(cursor: str | None) -> tuple[int, dt.date, int] | None:
    if not cursor:
        return None
    try:
        ts, day, rid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return int(ts), dt.date.fromisoformat(day), int(rid)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor: pass back the cursor of the previous page") from exc
