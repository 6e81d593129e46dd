"""Revoked sign-in sessions, published to Redis so every API process refuses them at once.

The database stays the record: ``auth_sessions.revoked_at`` is set as before, and every request
already reads its session row (:func:`logmaster.api.deps.current_principal`). With ``redis_url``
set, each revocation is also published when its transaction commits:
``SET logmaster:revoked:<session id> <reason> PX <rest of the session's life>`` (after that the
session has expired anyway) and ``PUBLISH logmaster:revoked <session id>`` for processes holding
long-lived connections (live tail). :meth:`logmaster.api.tokens.Signer.check` refuses an access
token of a session found there before the database is asked.

Every code path is covered without its call site knowing: a ``before_flush`` hook notices any
:class:`AuthSession` whose ``revoked_at`` was set, :func:`note_revoked` takes the ids of bulk
updates (:func:`logmaster.api.accounts.revoke_sessions`), and an ``after_commit`` hook publishes
them (a rolled-back revocation publishes nothing). The Redis URL comes from the session's
``info`` (:func:`logmaster.api.throttle.session_info`). Redis unreachable: the revocation is in
the database, which every request reads; the miss is logged once and counted (``redisstate``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from logmaster.api.models import AuthSession, as_utc
from logmaster.redisstate import RedisState, RedisUnavailable, state_for

log = logging.getLogger(__name__)

USE = "revocation"
CHANNEL = "logmaster:revoked"
_PENDING = "revoked_sessions"
# (session id, when the session would have expired, reason)
Revoked = tuple[str, dt.datetime | None, str]


def note_revoked(session: Session, revoked: Sequence[Revoked]) -> None:
    """Publish these (session id, expires at, reason) when ``session`` commits."""
    session.info.setdefault(_PENDING, []).extend(revoked)


@event.listens_for(Session, "before_flush")
def _collect(session: Session, _context: Any, _instances: Any) -> None:
    if not session.info.get("redis_url"):
        return
    found: list[Revoked] = []
    for obj in session.dirty:
        if (
            isinstance(obj, AuthSession)
            and obj.revoked_at is not None
            and inspect(obj).attrs.revoked_at.history.added
        ):
            found.append((obj.id, obj.expires_at, obj.revoked_reason or "revoked"))
    if found:
        note_revoked(session, found)


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    redis = state_for(session.info.get("redis_url"))
    if pending and redis is not None:
        publish(redis, pending)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


def publish(redis: RedisState, revoked: Sequence[Revoked]) -> bool:
    """Mark the sessions revoked in Redis; False when Redis could not be reached."""
    now = dt.datetime.now(dt.UTC)

    def run(client: Any) -> None:
        pipe = client.pipeline(transaction=False)
        for sid, expires, reason in revoked:
            left = (as_utc(expires) or now) - now
            # At least a minute: a clock a little off must not let a revoked session back in.
            ms = max(60_000, int(left.total_seconds() * 1000))
            pipe.set(redis.key("revoked", sid), reason, px=ms)
            pipe.publish(CHANNEL, sid)
        pipe.execute()

    try:
        redis.call(USE, run)
    except RedisUnavailable:
        return False
    return True


def is_revoked(redis: RedisState, session_id: str) -> bool:
    """True when Redis says the session was revoked; False also when Redis is unreachable
    (the caller's database check decides then)."""
    try:
        return bool(redis.call(USE, lambda c: c.exists(redis.key("revoked", session_id))))
    except RedisUnavailable:
        return False
