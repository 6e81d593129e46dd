"""The audit trail: search it (``view_audit``: everyone's; others: their own) and verify it.

There is no route that changes or deletes an entry, for anyone.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from logmaster.api.audit import verify_audit
from logmaster.api.deps import CurrentPrincipal, DbSession, Principal, require
from logmaster.api.models import AuditEntry, as_utc

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEntryOut(BaseModel):
    seq: int
    at: dt.datetime
    actor: str | None
    source_ip: str | None
    action: str
    target: str
    result: str
    details: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None = Field(
        description="Pass as before= for the next (older) page; null at the end."
    )


class AuditVerdictOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    first_bad_seq: int | None
    problems: list[str]


def entry_out(e: AuditEntry) -> AuditEntryOut:
    try:
        details = json.loads(e.details)
    except ValueError:
        details = {"unreadable": e.details}
    return AuditEntryOut(
        seq=e.seq,
        at=as_utc(e.at) or e.at,
        actor=e.actor,
        source_ip=e.source_ip,
        action=e.action,
        target=e.target,
        result=e.result,
        details=details if isinstance(details, dict) else {"value": details},
    )


@router.get("")
def list_audit(
    principal: CurrentPrincipal,
    session: DbSession,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="Exact, or a prefix ending in '.' (auth.)")
    ] = None,
    result: Annotated[str | None, Query(max_length=32)] = None,
    target: Annotated[str | None, Query(max_length=300)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**62, description="Only entries older than this seq.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Audit entries, newest first. Without view_audit you see only your own actions."""
    query = sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if "view_audit" not in principal.actions:
        actor = principal.username if actor in (None, principal.username) else "\x00"
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if action is not None:
        query = query.where(
            AuditEntry.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else AuditEntry.action == action
        )
    if result is not None:
        query = query.where(AuditEntry.result == result)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before is not None:
        query = query.where(AuditEntry.seq < before)
    rows = list(session.scalars(query))
    return AuditPage(
        entries=[entry_out(e) for e in rows],
        next_before=rows[-1].seq if len(rows) == limit else None,
    )


@router.get("/verify")
def verify_audit_trail(
    principal: Annotated[Principal, require("view_audit")], session: DbSession
) -> AuditVerdictOut:
    """Recompute the hash chain of the whole audit trail (edits, deletions, reordering)."""
    verdict = verify_audit(session.get_bind())  # type: ignore[arg-type]
    return AuditVerdictOut(
        ok=verdict.ok,
        entries=verdict.entries,
        head_seq=verdict.head_seq,
        first_bad_seq=verdict.first_bad_seq,
        problems=verdict.problems,
    )
