"""PostgreSQL index specifics: partition pruning, schema and version, partitions and indexes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from logmaster.config import load_settings
from logmaster.index import open_index
from logmaster.index import postgres as pg_module
from logmaster.index.base import Batch, IndexedEvent, SearchRequest
from logmaster.index.fields import split_event
from logmaster.index.postgres import PostgresIndex
from logmaster.index.postgres_schema import SCHEMA_VERSION, VERSION_TABLE
from logmaster.index.query import Match, parse_query
from logmaster.index.sessions import Timeouts, session_ops

pytestmark = pytest.mark.postgres

DAY = dt.date(2026, 11, 28)
T0 = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def index(pg_url: str) -> Iterator[PostgresIndex]:
    backend = PostgresIndex(pg_url)
    yield backend
    backend.close()


def _event(day: dt.date, offset: int, fields: dict[str, Any]) -> dict[str, Any]:
    stamp = dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC)
    return {
        "@timestamp": stamp,
        "observer.name": "gw",
        "log.file.path": f"gw/{day:%Y/%m/%d}.log",
        "log.offset": offset,
        **fields,
    }


def _write(index: PostgresIndex, events: list[dict[str, Any]], day: dt.date = DAY) -> None:
    batch = Batch()
    for ev in events:
        row, extra = split_event(ev)
        batch.events.append(IndexedEvent(day, row, extra))
        batch.sessions.extend(
            session_ops(ev, ev["log.file.path"], ev["log.offset"], day, Timeouts())
        )
        batch.files[ev["log.file.path"]] = (day, ev["log.offset"] + 100, 1, 0)
    index.write(batch)


def _relations(url: str, sql: str, params: list[Any]) -> set[str]:
    """Tables the plan of ``sql`` reads."""
    with psycopg.connect(url) as conn:
        row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Relation Name" in node:
                found.add(node["Relation Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(row[0])
    return found


def test_time_bounded_reads_open_only_neighbouring_partitions(
    index: PostgresIndex, pg_url: str
) -> None:
    """A search of one day plans only the partitions of the day before, the day and after."""
    for delta in range(-5, 6):
        day = DAY + dt.timedelta(days=delta)
        _write(index, [_event(day, 0, {"message": "admin logged in"})], day)
    start, end = T0, T0 + dt.timedelta(hours=1)
    expected = {"events_20261127", "events_20261128", "events_20261129"}
    for query in ("", "admin", "src:10.0.0.0/8 OR network.bytes:>5"):
        node = parse_query(query)
        sql, params = index._search_sql(SearchRequest(node, start, end))
        assert _relations(pg_url, sql, params) == expected
        where, params = index._where(SearchRequest(node, start, end))
        sql = f"SELECT device, count(*) FROM events WHERE {where} GROUP BY device"
        assert _relations(pg_url, sql, params) == expected
    assert len(index.search(SearchRequest(None, start, end)).hits) == 1


def test_schema_is_created_once_and_versioned(index: PostgresIndex, pg_url: str) -> None:
    """Opening records the schema version, reopening is a no-op, a newer version is refused."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")
        assert kind.fetchone() == ("p",)  # partitioned
        PostgresIndex(pg_url).close()
        assert conn.execute(f"SELECT count(*) FROM {VERSION_TABLE}").fetchone() == (1,)
        conn.execute(f"UPDATE {VERSION_TABLE} SET version = {SCHEMA_VERSION + 1}")
        with pytest.raises(RuntimeError, match="newer"):
            PostgresIndex(pg_url)


def test_each_day_partition_has_its_indexes(index: PostgresIndex, pg_url: str) -> None:
    """A day's partition gets the GIN full-text index and the btree indexes of sqlite.py."""
    _write(index, [_event(DAY, 0, {"message": "x"})])
    with psycopg.connect(pg_url) as conn:
        bound = conn.execute(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = %s::regclass",
            ("events_20261128",),
        ).fetchone()
        defs = [
            r[0]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s "
                "AND schemaname = current_schema()",
                ("events_20261128",),
            )
        ]
    assert bound == ("FOR VALUES IN ('2026-11-28')",)
    columns = sorted(d[d.index("(") :] for d in defs)
    assert columns == sorted(
        [
            "(day, id)",
            "(ts)",
            "(device, ts)",
            "(src_ip, ts) WHERE (src_ip IS NOT NULL)",
            "(dst_ip, ts) WHERE (dst_ip IS NOT NULL)",
            "(src_nat_ip, ts) WHERE (src_nat_ip IS NOT NULL)",
            "(client_ip, ts) WHERE (client_ip IS NOT NULL)",
            "(user_name, ts) WHERE (user_name IS NOT NULL)",
            "(message_tsv)",
        ]
    )
    assert any("USING gin (message_tsv)" in d for d in defs)


def test_older_schema_gets_the_new_indexes(index: PostgresIndex, pg_url: str) -> None:
    """A version-1 index (full per-field indexes, sessions_outer) is brought to the current
    one on open: the sessions indexes the close path relies on exist afterwards."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP INDEX sessions_outer_port")
        conn.execute("DROP INDEX sessions_end_ref")
        conn.execute("CREATE INDEX sessions_outer ON sessions (kind, outer_ip, start_us)")
        conn.execute(f"UPDATE {VERSION_TABLE} SET version = 1")
    PostgresIndex(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes")}
        (version,) = conn.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone() or (0,)
    assert {"sessions_outer_port", "sessions_end_ref"} <= names
    assert "sessions_outer" not in names
    assert version == SCHEMA_VERSION


def test_drop_days_detaches_and_drops_partitions(index: PostgresIndex, pg_url: str) -> None:
    """drop_days leaves no table of the dropped days behind."""
    for day in (DAY, DAY + dt.timedelta(days=1)):
        _write(index, [_event(day, 0, {"message": "x"})], day)
    index.drop_days(DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=9))
    with psycopg.connect(pg_url) as conn:
        gone = conn.execute("SELECT to_regclass('events_20261129')").fetchone()
        kept = conn.execute("SELECT to_regclass('events_20261128')").fetchone()
    assert gone == (None,)
    assert kept is not None and kept[0] is not None
    assert index.days() == [DAY]


def test_failed_batch_rolls_back_its_sessions_too(
    index: PostgresIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Here sessions, events and checkpoints share one transaction: a failure keeps none."""
    copy = pg_module._copy_events

    def copy_then_fail(*args: Any) -> None:
        copy(*args)
        raise RuntimeError("connection lost")

    monkeypatch.setattr(pg_module, "_copy_events", copy_then_fail)
    nat = {
        "source.ip": "192.168.1.5",
        "source.port": 5000,
        "source.nat.ip": "203.0.113.5",
        "source.nat.port": 6000,
        "event.action": "translation-built",
    }
    with pytest.raises(RuntimeError):
        _write(index, [_event(DAY, 0, nat)])
    span = (T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1))
    assert index.sessions("nat", *span) == []
    assert index.checkpoint("gw/2026/11/28.log", DAY) == 0
    monkeypatch.undo()
    _write(index, [_event(DAY, 0, nat)])
    assert len(index.sessions("nat", *span)) == 1


def test_full_text_words_split_at_punctuation(index: PostgresIndex, pg_url: str) -> None:
    """The tsvector holds the words FTS5 would: addresses and hosts split at punctuation."""
    _write(index, [_event(DAY, 0, {"message": "From admin@Example.com at 10.0.0.1:22"})])
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT tsvector_to_array(message_tsv) FROM events").fetchone()
    assert row is not None
    assert sorted(row[0]) == ["0", "1", "10", "22", "admin", "at", "com", "example", "from"]


def test_odd_field_names_are_quoted(index: PostgresIndex) -> None:
    """Field names reach the SQL only quoted: quotes and % in them are harmless."""
    _write(index, [_event(DAY, 0, {"it's": "yes", "100%": 7, "message": "x"})])
    span = (T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=1))
    for node in (
        Match("it's", ("it's",), "text", "eq", "YES"),
        Match("100%", ("100%",), "text", "range", low="5", low_inclusive=True),
        Match("100%", ("100%",), "text", "wildcard", "7*"),
    ):
        assert len(index.search(SearchRequest(node, *span)).hits) == 1, node


def test_json_that_jsonb_refuses_is_cleaned(index: PostgresIndex) -> None:
    """NaN and \\u0000 in extra (valid for json.dumps, not for jsonb) do not fail the batch."""
    ev = _event(DAY, 0, {"message": "x", "ratio": float("nan"), "note": "a\x00b"})
    _write(index, [ev])
    hit = index.search(SearchRequest(None, T0, T0)).hits[0]
    assert hit.event["ratio"] is None
    assert hit.event["note"] == "a\ufffdb"
    assert json.dumps(hit.event, default=str)


def test_from_settings(pg_url: str, tmp_path: Path) -> None:
    """The postgres backend opens from index.postgres_url (psycopg or SQLAlchemy spelling)."""
    for url in (pg_url, pg_url.replace("postgresql://", "postgresql+psycopg://")):
        settings = load_settings(
            None, data_dir=tmp_path, index={"backend": "postgres", "postgres_url": url}
        )
        backend = open_index(settings)
        assert isinstance(backend, PostgresIndex)
        assert backend.days() == []
        backend.close()
    settings = load_settings(None, data_dir=tmp_path, index={"backend": "postgres"})
    with pytest.raises(ValueError, match="postgres_url"):
        open_index(settings)


def test_reconnects_after_the_server_ends_the_session(index: PostgresIndex, pg_url: str) -> None:
    """The call that meets a dropped connection fails; the next one reconnects."""
    _write(index, [_event(DAY, 0, {"message": "x"})])
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (index._conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        index.days()
    assert index.days() == [DAY]
    _write(index, [_event(DAY, 100, {"message": "y"})])
    assert index.checkpoint("gw/2026/11/28.log", DAY) == 200


def test_same_answers_as_sqlite(index: PostgresIndex, tmp_path: Path) -> None:
    """Random combinations of the contract's queries find the same events in both backends."""
    import random

    from test_contract import CORPUS, QUERIES, batch, offsets

    from logmaster.index.sqlite import SqliteIndex

    reference = SqliteIndex(tmp_path / "index")
    try:
        for backend in (index, reference):
            backend.write(batch(CORPUS))
        atoms = [q for q, _ in QUERIES]
        rnd = random.Random(5651)
        queries = list(atoms)
        for _ in range(300):
            parts = [("NOT " if rnd.random() < 0.3 else "") + rnd.choice(atoms) for _ in range(3)]
            queries.append((" OR " if rnd.random() < 0.5 else " ").join(parts))
        for query in queries:
            assert offsets(index, query) == offsets(reference, query), query
    finally:
        reference.close()


def test_partitions_are_analyzed_as_they_fill(
    index: PostgresIndex, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer ANALYZEs a day partition it has doubled (autovacuum may be off, as here),
    with the statistics target that lets the planner tell a rare word from a common one."""
    from logmaster.index import postgres as backend
    from logmaster.index.postgres_schema import TSV_STATISTICS

    monkeypatch.setattr(backend, "ANALYZE_ROWS", 20)

    def analyzed() -> tuple[int, int]:
        """(rows the last ANALYZE counted, -1 if none; the word column's statistics target)."""
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT c.reltuples, a.attstattarget FROM pg_class c "
                "JOIN pg_attribute a ON a.attrelid = c.oid "
                "WHERE c.relname = 'events_20261128' AND a.attname = 'message_tsv' "
                "AND c.relnamespace = current_schema()::regnamespace"
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    _write(index, [_event(DAY, n, {"message": f"word{n}"}) for n in range(10)])
    assert analyzed() == (-1, TSV_STATISTICS)  # never analyzed
    _write(index, [_event(DAY, n, {"message": f"word{n}"}) for n in range(10, 25)])
    assert analyzed() == (25, TSV_STATISTICS)  # 25 rows >= 20: analyzed
    _write(index, [_event(DAY, n, {"message": f"word{n}"}) for n in range(25, 40)])
    assert analyzed() == (25, TSV_STATISTICS)  # 15 more < the 25 it had: not yet
    _write(index, [_event(DAY, n, {"message": f"word{n}"}) for n in range(40, 50)])
    assert analyzed() == (50, TSV_STATISTICS)
