"""PostgreSQL index: day partitions, a generated tsvector for full text, one transaction a batch.

Tables, indexes and partitions are described in ``postgres_schema.py``. A batch is written in a
single transaction: its session operations (the same idempotent statements as ``sqlite.py``),
its events (``COPY`` into the partitioned ``events``, which routes each row to its day), and the
checkpoint upserts. A crash at any point leaves all of it or none of it, so a restarted indexer
indexes every line exactly once.

Queries go through the shared compiler (``sql.py``) with PostgreSQL hooks. Every time-bounded
query also states ``day BETWEEN start-1 AND end+1`` (an archive day is the device's local day,
which reaches into the neighbouring UTC days), which lets the planner open only those partitions:
the same day files ``sqlite.py`` opens. Results are ordered and paged exactly like ``sqlite.py``
(newest first by ts, then day, then id) with the same cursor format.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import threading
from collections import Counter
from typing import Any

import psycopg
from psycopg.rows import dict_row

from logmaster.config import Settings
from logmaster.index.base import (
    Batch,
    Hit,
    IndexBackend,
    IndexedEvent,
    SearchPage,
    SearchRequest,
    Session,
    SessionKind,
    SessionOp,
)
from logmaster.index.fields import COLUMNS, from_micros, micros
from logmaster.index.postgres_schema import (
    EVENT_COLUMNS,
    FOLD,
    PARTITIONS_SQL,
    create_partition_sql,
    ensure_schema,
    partition_day,
    partition_name,
)
from logmaster.index.sql import Compiler
from logmaster.index.sqlite import MAX_SESSION_US, _decode_cursor, _encode_cursor, row_to_event

# A string that reads as a number, for ranges on fields outside the columns; the same grammar as
# sqlite.py's lm_number(), so both backends agree on which values a range can match.
NUMBER_RE = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"

_SELECT = f"day, id, {', '.join(EVENT_COLUMNS)}, extra::text AS extra"
_COPY = f"COPY events (day, {', '.join(EVENT_COLUMNS)}, extra) FROM STDIN"
_CHECKPOINT = (
    "INSERT INTO checkpoints (file, day, log_offset, lines, failures) VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT (file) DO UPDATE SET day = excluded.day, log_offset = excluded.log_offset, "
    "lines = checkpoints.lines + excluded.lines, "
    "failures = checkpoints.failures + excluded.failures"
)


def _key(field: str) -> str:
    """``field`` as an SQL string literal (``%`` doubled for psycopg's placeholder parser).

    Inlined rather than bound because ``extra_number`` needs the key three times in one
    expression; the quoting makes any name safe (the query parser allows only [\\w@.-] anyway).
    """
    return "'" + field.replace("'", "''").replace("%", "%%") + "'"


class PostgresCompiler(Compiler):
    placeholder = "%s"
    like = "ILIKE"

    def ip_param(self, text: str) -> Any:
        # An ipaddress object is bound as an inet parameter (the typed form of "%s::inet").
        return ipaddress.ip_address(text)

    def ip_range(self, cidr: str) -> tuple[str, str]:
        # The compiler writes "col BETWEEN first AND last": inet sorts by family, then by
        # address, so for the host addresses stored that is exactly "col <<= network".
        net = ipaddress.ip_network(cidr, strict=False)
        low = self.bind(str(net.network_address))
        high = self.bind(str(net.broadcast_address))
        return f"{low}::inet", f"{high}::inet"

    def extra_text(self, field: str) -> str:
        return f"(extra->>{_key(field)})"

    def extra_number(self, field: str) -> str:
        # A plain ::numeric cast would abort the whole query on the first "n/a".
        value = f"(extra->>{_key(field)})"
        return (
            f"(CASE WHEN jsonb_typeof(extra->{_key(field)}) = 'number' THEN {value}::numeric "
            f"WHEN jsonb_typeof(extra->{_key(field)}) = 'string' AND {value} ~ '{NUMBER_RE}' "
            f"THEN {value}::numeric END)"
        )

    def fulltext(self, tokens: list[str], prefix: bool) -> str:
        # "_" is a word character for \w but a separator for both full-text parsers; split here
        # so that the prefix mark lands on the last real word only. Diacritics are folded as in
        # the message_tsv column (postgres_schema.FOLD).
        parts = [p for t in tokens for p in t.translate(FOLD).split("_") if p]
        if not parts:
            return "FALSE"  # FTS5 finds nothing for a phrase without words either
        if not prefix:
            return f"message_tsv @@ phraseto_tsquery('simple', {self.bind(' '.join(parts))})"
        # Parts are \w+ only: no quote or tsquery operator can reach the query text.
        query = " <-> ".join([*parts[:-1], parts[-1] + ":*"])
        return f"message_tsv @@ to_tsquery('simple', {self.bind(query)})"


ANALYZE_ROWS = 50_000


class PostgresIndex(IndexBackend):
    name = "postgres"

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresIndex:
        url = settings.index.postgres_url
        if not url:
            raise ValueError("index.postgres_url is required for the postgres index backend")
        return cls(url)

    def __init__(self, url: str) -> None:
        # The SQLAlchemy spelling of the same server (as in db_url) is accepted too.
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        # One connection; the lock keeps another thread's read out of a batch's transaction.
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] = self._open()
        # day -> (rows this process wrote since its last ANALYZE of the day, rows then).
        self._unanalyzed: dict[dt.date, tuple[int, int]] = {}
        try:
            ensure_schema(self._conn)
        except BaseException:
            self._conn.close()
            raise

    def _db(self) -> psycopg.Connection[Any]:
        """The connection; a new one if the server dropped the old (a restart, a failover).

        The operation that met the broken connection fails; the indexer's retry or the next
        search then runs on the new one.
        """
        if self._conn.broken:
            self._conn.close()
            self._conn = self._open()
        return self._conn

    def _open(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True)
        # The index is a copy rebuildable from the archive: a commit need not wait for the WAL
        # flush (a server crash loses at most the last moments, which the checkpoint, lost
        # with them, makes the indexer redo). Never inconsistent, only possibly behind.
        conn.execute("SET synchronous_commit = off")
        return conn

    def days(self) -> list[dt.date]:
        with self._lock:
            names = [r[0] for r in self._db().execute(PARTITIONS_SQL)]
        return sorted(d for d in map(partition_day, names) if d is not None)

    # -- writing ----------------------------------------------------------------------------

    def checkpoint(self, file: str, day: dt.date) -> int:
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT log_offset FROM checkpoints WHERE file = %s AND day = %s", (file, day)
                )
                .fetchone()
            )
        return int(row[0]) if row else 0

    def write(self, batch: Batch) -> None:
        with self._lock:
            # The days of the checkpoints too: like a day file in sqlite.py, a day that has
            # been indexed has a partition even if none of its lines became an event yet.
            days = {ev.day for ev in batch.events} | {d for d, *_ in batch.files.values()}
            self._ensure_partitions(days)
            conn = self._db()
            with conn.transaction(), conn.cursor() as cur:
                if batch.sessions:
                    self._apply_sessions(cur, batch.sessions)
                if batch.events:
                    _copy_events(cur, batch.events)
                if batch.files:
                    cur.executemany(
                        _CHECKPOINT,
                        [
                            (file, day, offset, lines, failures)
                            for file, (day, offset, lines, failures) in batch.files.items()
                        ],
                    )
            self._analyze_grown(batch)

    def _analyze_grown(self, batch: Batch) -> None:
        """ANALYZE a day's partition when this process has doubled it (at least ANALYZE_ROWS).

        The planner needs each partition's statistics (a day partition starts empty, and a
        search of a word or an address planned on "empty" reads the whole day); autovacuum may
        be off or late, so the writer sees to it: a day gets a handful of ANALYZEs, each
        reading a sample, not the partition.
        """
        for day, n in Counter(ev.day for ev in batch.events).items():
            since, at_last = self._unanalyzed.get(day, (0, 0))
            since += n
            if since >= max(ANALYZE_ROWS, at_last):
                self._db().execute(f"ANALYZE {partition_name(day)}")
                since, at_last = 0, at_last + since
            self._unanalyzed[day] = (since, at_last)

    def _ensure_partitions(self, days: set[dt.date]) -> None:
        if not days:
            return
        names = {partition_name(d): d for d in days}
        missing = (
            self._db()
            .execute(
                "SELECT n FROM unnest(%s::text[]) AS n WHERE to_regclass(n) IS NULL",
                (sorted(names),),
            )
            .fetchall()
        )
        for (name,) in missing:
            # Its own short transaction (autocommit): creating a partition locks the parent
            # against searches, which must not wait for a whole batch.
            self._db().execute(create_partition_sql(names[name]))

    def _apply_sessions(self, cur: psycopg.Cursor[Any], ops: list[SessionOp]) -> None:
        # Runs of starts go in one executemany (psycopg pipelines it: one round trip instead
        # of one per NAT line); order is kept, a close may refer to a start just before it.
        run: list[SessionOp] = []
        for op in ops:
            if op.op in ("open", "span"):
                run.append(op)
                continue
            if run:
                cur.executemany(_INSERT_SESSION, [_start_values(o) for o in run])
                run = []
            _apply(cur, op)
        if run:
            cur.executemany(_INSERT_SESSION, [_start_values(o) for o in run])

    # -- reading ----------------------------------------------------------------------------

    def _where(self, request: SearchRequest) -> tuple[str, list[Any]]:
        comp = PostgresCompiler()
        cond = comp.compile(request.query)
        first = request.start.astimezone(dt.UTC).date() - dt.timedelta(days=1)
        last = request.end.astimezone(dt.UTC).date() + dt.timedelta(days=1)
        where = f"day BETWEEN %s AND %s AND ts >= %s AND ts <= %s AND {cond}"
        params: list[Any] = [first, last, micros(request.start), micros(request.end), *comp.params]
        if request.devices is not None:
            if not request.devices:
                return "FALSE", []
            where += " AND device = ANY(%s)"
            params.append(sorted(request.devices))
        return where, params

    # Reads of events run with prepare=False: psycopg would otherwise prepare a query seen five
    # times, and a generic plan cannot prune partitions while planning (PostgreSQL 15 then
    # locks every day partition and its indexes); an unprepared one is planned with the days.

    def _search_sql(self, request: SearchRequest) -> tuple[str, list[Any]]:
        where, params = self._where(request)
        cursor = _decode_cursor(request.cursor)
        if cursor is not None:
            c_ts, c_day, c_id = cursor
            # The plain ts bound lets the ts index start at the cursor; the row comparison is
            # the exact "older than the last hit" of the (ts, day, id) order.
            where += " AND ts <= %s AND (ts, day, id) < (%s, %s, %s)"
            params += [c_ts, c_ts, c_day, c_id]
        sql = (
            f"SELECT {_SELECT} FROM events WHERE {where} "
            "ORDER BY ts DESC, day DESC, id DESC LIMIT %s"
        )
        return sql, [*params, request.limit + 1]

    def search(self, request: SearchRequest) -> SearchPage:
        sql, params = self._search_sql(request)
        with self._lock, self._db().cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql, params, prepare=False).fetchall()
        page = rows[: request.limit]
        hits = [Hit(row["day"], row["id"], row_to_event(row)) for row in page]
        next_cursor = None
        if len(rows) > request.limit and page:
            last = page[-1]
            next_cursor = _encode_cursor(last["ts"], last["day"], last["id"])
        return SearchPage(hits, next_cursor)

    def histogram(self, request: SearchRequest, buckets: int) -> list[tuple[dt.datetime, int]]:
        where, params = self._where(request)
        start, end = micros(request.start), micros(request.end)
        width = max(1, (end - start + buckets) // buckets)
        counts = [0] * buckets
        sql = f"SELECT (ts - %s) / %s AS b, count(*) FROM events WHERE {where} GROUP BY b"
        with self._lock:
            for b, n in self._db().execute(sql, [start, width, *params], prepare=False):
                if 0 <= b < buckets:
                    counts[b] += n
        return [(from_micros(start + i * width), n) for i, n in enumerate(counts)]

    def device_counts(self, request: SearchRequest) -> dict[str, int]:
        where, params = self._where(request)
        sql = f"SELECT device, count(*) FROM events WHERE {where} GROUP BY device"
        with self._lock:
            return dict(self._db().execute(sql, params, prepare=False).fetchall())

    def get(self, day: dt.date, event_id: int) -> dict[str, Any] | None:
        sql = f"SELECT {_SELECT} FROM events WHERE day = %s AND id = %s"
        with self._lock, self._db().cursor(row_factory=dict_row) as cur:
            row = cur.execute(sql, (day, event_id), prepare=False).fetchone()
        return row_to_event(row) if row is not None else None

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
            "kind = %s",
            "start_us <= %s",
            "start_us >= %s",
            "COALESCE(end_us, expires_us, start_us) >= %s",
        ]
        params: list[Any] = [kind, hi, lo - MAX_SESSION_US, lo]
        keys: tuple[tuple[str, Any], ...] = (
            ("outer_ip = %s::inet", outer_ip),
            ("inner_ip = %s::inet", inner_ip),
            ("outer_port = %s", outer_port),
            ("mac = %s", mac),
            ("lower(user_name) = %s", user.lower() if user is not None else None),
        )
        for cond, value in keys:
            if value is not None:
                conds.append(cond)
                params.append(value)
        sql = (
            f"SELECT *, host(inner_ip) AS inner_text, host(outer_ip) AS outer_text "
            f"FROM sessions WHERE {' AND '.join(conds)} ORDER BY start_us, id"
        )
        with self._lock, self._db().cursor(row_factory=dict_row) as cur:
            return [_session(row) for row in cur.execute(sql, params)]

    def parse_stats(self, day: dt.date) -> dict[str, tuple[int, int]]:
        with self._lock:
            rows = self._db().execute(
                "SELECT file, lines, failures FROM checkpoints WHERE day = %s", (day,)
            )
            return {f: (n, e) for f, n, e in rows}

    def drop_days(self, first: dt.date, last: dt.date) -> None:
        with self._lock, (conn := self._db()).transaction():
            for day in self.days():
                if first <= day <= last:
                    # Detached first: the parent then forgets the day before its rows go.
                    name = partition_name(day)
                    conn.execute(f"ALTER TABLE events DETACH PARTITION {name}")
                    conn.execute(f"DROP TABLE {name}")
            span = (first, last)
            conn.execute("DELETE FROM checkpoints WHERE day BETWEEN %s AND %s", span)
            conn.execute("DELETE FROM sessions WHERE day BETWEEN %s AND %s", span)
            conn.execute(
                "UPDATE sessions SET end_us = NULL, end_file = NULL, end_offset = NULL, "
                "end_day = NULL WHERE end_day BETWEEN %s AND %s",
                span,
            )

    def drop_node_days(self, first: dt.date, last: dt.date, node: str) -> None:
        """Forget what was indexed from ``node``'s archive files of days first..last only.

        Several nodes share this index (``cluster.py``): a reindex or a retention purge on one
        node must not take the other nodes' events of the same days with it, so rows go by
        their file reference (``NODE:path``) and partitions stay.
        """
        prefix = node + ":"
        span = (first, last, prefix)
        with self._lock, (conn := self._db()).transaction():
            conn.execute(
                "DELETE FROM events WHERE day BETWEEN %s AND %s AND starts_with(log_file, %s)",
                span,
            )
            conn.execute(
                "DELETE FROM checkpoints WHERE day BETWEEN %s AND %s AND starts_with(file, %s)",
                span,
            )
            conn.execute(
                "DELETE FROM sessions WHERE day BETWEEN %s AND %s AND starts_with(start_file, %s)",
                span,
            )
            conn.execute(
                "UPDATE sessions SET end_us = NULL, end_file = NULL, end_offset = NULL, "
                "end_day = NULL WHERE end_day BETWEEN %s AND %s AND starts_with(end_file, %s)",
                span,
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# -- events -------------------------------------------------------------------------------------


# Positions of the text columns in a COPY row (after day): only they can hold a NUL.
_TEXT_AT = [i + 1 for i, c in enumerate(COLUMNS) if c.kind in ("text", "mac")]


def _copy_events(cur: psycopg.Cursor[Any], events: list[IndexedEvent]) -> None:
    with cur.copy(_COPY) as copy:
        for ev in events:
            values = [ev.day, *ev.row, _clean_json(ev.extra)]
            for i in _TEXT_AT:
                values[i] = _clean(values[i])
            copy.write_row(values)


def _clean(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL (SQLite can); one such line must not stop the indexer.
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _clean_json(extra: str | None) -> str | None:
    """``extra`` as jsonb accepts it: no \\u0000 and no NaN/Infinity (json.dumps writes both)."""
    if extra is None or not ("\\u0000" in extra or "NaN" in extra or "Infinity" in extra):
        return extra
    return json.dumps(_scrub(json.loads(extra)), ensure_ascii=False)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_clean(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


# -- sessions: the statements of sqlite.py's _apply, with the same semantics ----------------------

_INSERT_SESSION = (
    "INSERT INTO sessions (kind, device, start_us, end_us, expires_us, inner_ip, inner_port, "
    "outer_ip, outer_port, mac, user_name, transport, hostname, start_file, start_offset, day, "
    "end_file, end_offset, end_day) VALUES (%s, %s, %s, %s, %s, %s::inet, %s, %s::inet, %s, %s, "
    "%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (kind, start_file, start_offset) DO NOTHING"
)
_END_SESSION = (
    "UPDATE sessions SET end_us = %s, end_file = %s, end_offset = %s, end_day = %s WHERE id = %s"
)


def _ip(value: str | None) -> str | None:
    return value or None


def _start_values(op: SessionOp) -> tuple[Any, ...]:
    span = op.op == "span"
    return (
        op.kind,
        op.device,
        op.at,
        op.end,
        op.expires,
        _ip(op.inner_ip),
        op.inner_port,
        _ip(op.outer_ip),
        op.outer_port,
        op.mac,
        op.user,
        op.transport,
        op.hostname,
        op.ref_file,
        op.ref_offset,
        op.day,
        op.ref_file if span else None,
        op.ref_offset if span else None,
        op.day if span else None,
    )


def _apply(cur: psycopg.Cursor[Any], op: SessionOp) -> None:
    base = (op.kind, op.device)
    if op.op in ("open", "span"):
        cur.execute(_INSERT_SESSION, _start_values(op))
        return
    end = (op.at, op.ref_file, op.ref_offset, op.day)
    if op.op == "close":
        match, params = _match_keys(op)
        # The session this very line closed before (a replayed batch) comes first, so that a
        # replay never closes a second one; then the newest open session with these keys, along
        # the index (kind, key, start_us) and bounded to the longest session looked for: the
        # public address of a NAT rule has had millions of sessions, a close must not read them.
        if cur.execute(
            "SELECT 1 FROM sessions WHERE end_file = %s AND end_offset = %s AND kind = %s",
            (op.ref_file, op.ref_offset, op.kind),
        ).fetchone():
            return
        row = cur.execute(
            f"SELECT id FROM sessions WHERE kind = %s AND device = %s AND start_us <= %s "
            f"AND start_us >= %s {match} AND end_us IS NULL "
            "ORDER BY start_us DESC, id DESC LIMIT 1",
            (*base, op.at, op.at - MAX_SESSION_US, *params),
        ).fetchone()
        if row is not None:
            cur.execute(_END_SESSION, (*end, row[0]))
        return
    # renew: a lease for inner_ip. Same MAC: push its expiry; another MAC: the address moved.
    # Leases open at that moment, not only those open now: replayed after a later line closed
    # the lease, a renewal must find it again rather than open a second lease.
    rows = cur.execute(
        "SELECT id, mac, start_file, start_offset, end_us FROM sessions WHERE kind = %s "
        "AND device = %s AND inner_ip = %s::inet AND start_us <= %s "
        "AND (end_us IS NULL OR end_us > %s) ORDER BY start_us DESC, id DESC",
        (*base, _ip(op.inner_ip), op.at, op.at),
    ).fetchall()
    for sid, mac, sfile, soffset, end_us in rows:
        if (sfile, soffset) == (op.ref_file, op.ref_offset):
            return  # replay of the line that opened it
        if mac == op.mac:
            # GREATEST skips NULLs: a renewal without an expiry keeps the old one.
            cur.execute(
                "UPDATE sessions SET expires_us = GREATEST(expires_us, %s), "
                "hostname = COALESCE(%s, hostname) WHERE id = %s",
                (op.expires, op.hostname, sid),
            )
            return
        if end_us is None:
            cur.execute(_END_SESSION, (*end, sid))
    _apply(
        cur,
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
    keys: tuple[tuple[str, Any], ...] = (
        ("inner_ip = %s::inet", _ip(op.inner_ip)),
        ("outer_ip = %s::inet", _ip(op.outer_ip)),
        ("inner_port = %s", op.inner_port),
        ("outer_port = %s", op.outer_port),
        ("user_name = %s", op.user),
    )
    for cond, value in keys:
        if value is not None:
            conds.append(f"AND {cond}")
            params.append(value)
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
        inner_ip=row["inner_text"],
        inner_port=row["inner_port"],
        outer_ip=row["outer_text"],
        outer_port=row["outer_port"],
        mac=row["mac"],
        user=row["user_name"],
        transport=row["transport"],
        hostname=row["hostname"],
        start_ref=(row["start_file"], row["start_offset"]),
        end_ref=(row["end_file"], row["end_offset"]) if row["end_file"] else None,
    )
