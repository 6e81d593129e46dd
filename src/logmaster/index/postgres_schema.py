"""The PostgreSQL index schema: tables, indexes, day partitions and the schema version.

Split out of ``postgres.py`` so the backend module holds only reading and writing.

``events`` is partitioned by LIST on ``day`` (the archive day), one partition per day
(``events_YYYYMMDD``) created when a batch first brings that day; retention and reindex detach
and drop partitions instead of deleting rows. Indexes are declared on the partitioned parent, so
PostgreSQL builds each of them on every partition (the same ones ``sqlite.py`` has per day file,
plus the primary key (day, id) for :meth:`get` and a GIN index on ``message_tsv``). The
per-field indexes are partial (``WHERE col IS NOT NULL``) as in ``sqlite.py``: most lines have
no user, client or NAT address; any comparison on the column implies NOT NULL, so the planner
still uses them. A database of an older schema version gets the new indexes on open.

The schema is created on open with ``CREATE ... IF NOT EXISTS`` under an advisory lock and its
version recorded in ``logmaster_index_schema``; an up-to-date database runs no DDL at all (DDL on
the parent would queue behind a running batch).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

import psycopg

from logmaster.index.fields import COLUMNS, Column

# 2: partial per-field indexes, sessions (kind, outer_ip, outer_port) and (end_file, end_offset).
# 3: message_tsv statistics target TSV_STATISTICS.
SCHEMA_VERSION = 3
VERSION_TABLE = "logmaster_index_schema"
# Any constant: serialises schema creation between processes opening a new database at once.
_SCHEMA_LOCK = 0x4C4D_4958  # "LMIX"

EVENT_COLUMNS: list[str] = [c.name for c in COLUMNS]
PARTITION = re.compile(r"events_(\d{8})$")

# The planner's guess of how many rows hold a word comes from the words ANALYZE saw most often;
# with the default target (100) a rare word was guessed in 0.5 % of a day's rows, so a search for
# it read every row of the range along the time index instead of the GIN index (measured on 1M
# events, 7 days: 280 -> 51-68 ms). 1,000 keeps ten times as many words.
TSV_STATISTICS = 1000

_INT_TYPES = {"severity": "smallint", "facility": "smallint", "log_offset": "bigint"}
_TYPES = {"ip": "inet", "time": "bigint", "text": "text", "mac": "text"}


def _diacritic_folds() -> tuple[str, str]:
    """The letters FTS5's unicode61 tokenizer (remove_diacritics 1) reads as a plain ASCII one.

    Those with a single diacritic ("ş" and "Ş" -> "s", "İ" -> "i", "ğ" -> "g"), and the long s;
    "ı" has none and stays itself there too.
    """
    src, dst = ["ſ", "ẛ"], ["s", "s"]
    for first, end in ((0xC0, 0x250), (0x1E00, 0x1F00), (0x2100, 0x2150)):
        for code in range(first, end):
            parts = unicodedata.normalize("NFD", chr(code).lower())
            if len(parts) == 2 and parts[0].isascii() and unicodedata.combining(parts[1]):
                src.append(chr(code))
                dst.append(parts[0])
    return "".join(src), "".join(dst)


# SQLite's FTS5 (unicode61) splits words at every punctuation character, and so does the query
# compiler (\w+ tokens). PostgreSQL's parser instead keeps "10.0.0.1", "admin@example.com",
# "gw.example.com" or "/var/log" as single lexemes, so "example" or an IP typed as a phrase would
# find nothing. Turning ASCII punctuation into spaces first makes both indexes hold the same words;
# folding the diacritics as FTS5 does lets "sifre" find "Şifre" in both (the compiler folds the
# words of a query with FOLD).
FOLD_FROM, FOLD_TO = _diacritic_folds()
FOLD = str.maketrans(FOLD_FROM, FOLD_TO)
# The same words as translate(message, punctuation + FOLD_FROM, spaces + FOLD_TO), computed
# cheaply: translate() over ~400 characters cost the server 266 us per row (the whole of a COPY),
# this 25 us. ASCII punctuation (string.punctuation, as ranges) becomes spaces with a regular
# expression; the diacritic table only runs on the rare message that is not plain ASCII.
# Checked equal on 3,000 random strings of ASCII, Turkish letters and Unicode punctuation.
_ASCII_PUNCT = "[!-/:-@[-`{-~]"
_SPACED = f"regexp_replace(coalesce(message, ''), '{_ASCII_PUNCT}', ' ', 'g')"
_TSV = (
    "to_tsvector('simple', CASE WHEN coalesce(message, '') ~ '[^\\x01-\\x7f]' "
    f"THEN translate({_SPACED}, '{FOLD_FROM.replace(chr(39), chr(39) * 2)}', '{FOLD_TO}') "
    f"ELSE {_SPACED} END)"
)


def column_type(col: Column) -> str:
    if col.kind == "int":
        # Ports and codes fit an integer; the byte offset in a day file may not.
        return _INT_TYPES.get(col.name, "integer")
    return _TYPES[col.kind]


_EVENTS_DDL = f"""
CREATE SEQUENCE IF NOT EXISTS events_id_seq AS bigint;
CREATE TABLE IF NOT EXISTS events (
    day date NOT NULL,
    id bigint NOT NULL DEFAULT nextval('events_id_seq'),
    {", ".join(f"{c.name} {column_type(c)}" for c in COLUMNS)},
    extra jsonb,
    message_tsv tsvector GENERATED ALWAYS AS ({_TSV}) STORED,
    PRIMARY KEY (day, id)
) PARTITION BY LIST (day);
ALTER SEQUENCE events_id_seq OWNED BY events.id;
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_device ON events (device, ts);
CREATE INDEX IF NOT EXISTS events_src_ip ON events (src_ip, ts) WHERE src_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_dst_ip ON events (dst_ip, ts) WHERE dst_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_src_nat_ip ON events (src_nat_ip, ts)
    WHERE src_nat_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_client_ip ON events (client_ip, ts) WHERE client_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_user ON events (user_name, ts) WHERE user_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_message_tsv ON events USING gin (message_tsv);
ALTER TABLE events ALTER COLUMN message_tsv SET STATISTICS {TSV_STATISTICS};
"""

_OTHER_DDL = """
CREATE TABLE IF NOT EXISTS checkpoints (
    file text PRIMARY KEY, day date NOT NULL, log_offset bigint NOT NULL,
    lines bigint NOT NULL DEFAULT 0, failures bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS checkpoints_day ON checkpoints (day);
CREATE TABLE IF NOT EXISTS sessions (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind text NOT NULL, device text NOT NULL,
    start_us bigint NOT NULL, end_us bigint, expires_us bigint,
    inner_ip inet, inner_port integer, outer_ip inet, outer_port integer,
    mac text, user_name text, transport text, hostname text,
    start_file text NOT NULL, start_offset bigint NOT NULL, day date NOT NULL,
    end_file text, end_offset bigint, end_day date,
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


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the tables if needed; refuse a database made by a newer LogMaster."""
    with conn.transaction():
        # Up to date: no lock and no DDL, so that a role without CREATE can open it to search.
        found = _version(conn)
        if found != SCHEMA_VERSION:
            # Locked first: two CREATE TABLE IF NOT EXISTS at once can still collide.
            conn.execute(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version integer NOT NULL)")
            found = _version(conn)
        if found == SCHEMA_VERSION:
            return
        if found is not None and found > SCHEMA_VERSION:
            raise RuntimeError(
                f"the index database has schema version {found}, newer than this LogMaster "
                f"understands ({SCHEMA_VERSION}); upgrade LogMaster"
            )
        # No parameters: psycopg sends the script as it is (several statements at once).
        conn.execute(_EVENTS_DDL)
        conn.execute(_OTHER_DDL)
        conn.execute(f"DELETE FROM {VERSION_TABLE}")
        conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES ({SCHEMA_VERSION})")


def _version(conn: psycopg.Connection[Any]) -> int | None:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,)).fetchone()
    if not row or not row[0]:
        return None
    row = conn.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def partition_name(day: dt.date) -> str:
    return f"events_{day:%Y%m%d}"


def partition_day(name: str) -> dt.date | None:
    m = PARTITION.fullmatch(name)
    return dt.datetime.strptime(m.group(1), "%Y%m%d").date() if m else None


def create_partition_sql(day: dt.date) -> str:
    # Both parts come from a date object, never from input text. The statistics target is set
    # on the partition too: ANALYZE reads the partition's own.
    name = partition_name(day)
    return (
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF events "
        f"FOR VALUES IN ('{day.isoformat()}'); "
        f"ALTER TABLE {name} ALTER COLUMN message_tsv SET STATISTICS {TSV_STATISTICS}"
    )


PARTITIONS_SQL = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'events'::regclass"
)
