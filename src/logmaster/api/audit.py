"""The audit trail: append-only, hash-chained like the archive.

``h_0 = SHA-256("logmaster-audit-v1\\n")``, ``h_i = SHA-256(h_{i-1} || canonical_i)`` where
``canonical_i`` is the UTF-8 JSON (sorted keys, no spaces) of the entry's sequence number, time
(UTC, microseconds), actor, source address, action, target, result and details. ``audit_head``
holds the newest ``(seq, hash)``.

Concurrency: every writer starts its transaction by moving the head (``UPDATE audit_head SET
seq = seq + 1 ... RETURNING``). That statement takes SQLite's write lock, or PostgreSQL's row
lock, before anything is read, so API processes append one after another and the chain has no
forks; the entry and the new head hash commit together (with the caller's own change when a
session is passed, so an admin change and its audit entry are one transaction).

Deletion and edits: triggers refuse UPDATE/DELETE on ``audit_entries`` (migration 0003). Someone
with the database file can drop them; :func:`verify_audit` then still finds the edit (hash), the
deletion (a gap in the sequence, or a head past the last entry) and a reordering (hash).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from logmaster.api.models import AuditEntry, AuditHead, as_utc

GENESIS = hashlib.sha256(b"logmaster-audit-v1\n").hexdigest()

# Results used across the API.
OK = "ok"
DENIED = "denied"
FAILED = "failed"


def canonical(
    seq: int,
    at: dt.datetime,
    actor: str | None,
    source_ip: str | None,
    action: str,
    target: str,
    result: str,
    details: str,
) -> bytes:
    stamp = (as_utc(at) or at).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(
        {
            "seq": seq,
            "at": stamp,
            "actor": actor,
            "source_ip": source_ip,
            "action": action,
            "target": target,
            "result": result,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def chain(previous: str, entry: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + entry).hexdigest()


def _append(
    conn: Connection | Session,
    actor: str | None,
    source_ip: str | None,
    action: str,
    target: str,
    result: str,
    details: dict[str, Any],
) -> int:
    head = conn.execute(
        sa.text("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
    ).one()
    seq, previous = int(head[0]), str(head[1])
    at = dt.datetime.now(dt.UTC)
    text = json.dumps(
        details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    digest = chain(
        previous, canonical(seq, at, actor, source_ip, action, target[:300], result, text)
    )
    conn.execute(
        sa.insert(AuditEntry).values(
            seq=seq,
            at=at,
            actor=actor,
            source_ip=source_ip,
            action=action,
            target=target[:300],
            result=result,
            details=text,
            hash=digest,
        )
    )
    conn.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(hash=digest))
    return seq


def record(
    session_or_engine: Session | Engine,
    *,
    actor: str | None,
    source_ip: str | None,
    action: str,
    target: str,
    result: str,
    details: dict[str, Any],
) -> None:
    """Append one entry. With a Session it joins (and is committed with) the caller's
    transaction; with an Engine it commits on its own."""
    if isinstance(session_or_engine, Session):
        _append(session_or_engine, actor, source_ip, action, target, result, details)
        return
    with session_or_engine.begin() as conn:
        _append(conn, actor, source_ip, action, target, result, details)


@dataclass
class AuditVerdict:
    """The outcome of :func:`verify_audit`; ``problems`` name the first bad entries."""

    ok: bool
    entries: int
    head_seq: int
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)


def _rows(engine: Engine) -> Iterator[AuditEntry]:
    with Session(engine) as session:
        yield from session.scalars(
            sa.select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=1000)
        )


def verify_audit(engine: Engine, max_problems: int = 20) -> AuditVerdict:
    """Recompute the whole chain: edits, deletions and reordering are all reported."""
    with engine.connect() as conn:
        head = conn.execute(sa.select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    verdict = AuditVerdict(ok=True, entries=0, head_seq=int(head[0]))

    def bad(seq: int, text: str) -> None:
        verdict.ok = False
        if verdict.first_bad_seq is None:
            verdict.first_bad_seq = seq
        if len(verdict.problems) < max_problems:
            verdict.problems.append(text)

    previous, expected = GENESIS, 1
    for row in _rows(engine):
        verdict.entries += 1
        if row.seq != expected:
            bad(expected, f"entries {expected}..{row.seq - 1} are missing (deleted)")
            expected = row.seq
        digest = chain(
            previous,
            canonical(
                row.seq,
                row.at,
                row.actor,
                row.source_ip,
                row.action,
                row.target,
                row.result,
                row.details,
            ),
        )
        if digest != row.hash:
            bad(row.seq, f"entry {row.seq} does not match its hash (edited or reordered)")
            # Continue from the stored hash so one edit is reported once, not for every later row.
            digest = row.hash
        previous, expected = digest, expected + 1
    last = expected - 1
    if last < verdict.head_seq:
        bad(last + 1, f"entries {last + 1}..{verdict.head_seq} are missing (deleted at the end)")
    elif last > verdict.head_seq:
        bad(verdict.head_seq + 1, f"entries past {verdict.head_seq} were added behind the head")
    elif previous != head[1]:
        bad(last, "the last entry does not match the audit head")
    return verdict
