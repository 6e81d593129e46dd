"""Brute-force defence: failed sign-ins counted per account and per source address.

``[api] account_max_failures`` failures of one username within ``failure_window_s`` lock the
account for ``lockout_s``; ``ip_max_failures`` from one address block that address for as long.
Counters live in the ``throttle`` table, so every API process sees the same ones. Unknown
usernames are counted like real ones (the answer never tells whether an account exists). A
successful sign-in clears the account's counter, not the address's (else one valid account
would let an attacker reset the address counter). ``logmaster user unlock`` clears both.

With ``redis_url`` set (the session's ``info["redis_url"]``, see :func:`session_info`) the
counters live in Redis instead: ``logmaster:throttle:<key>`` counts failures and expires
``failure_window_s`` after the first one, ``logmaster:lock:<key>`` exists for ``lockout_s``;
one Lua script does INCR, EXPIRE and the lock, so concurrent failures in several API processes
are counted exactly. While Redis cannot be reached the table takes over (see
:mod:`logmaster.redisstate`), and a lock is honoured wherever it was recorded: a lockout made in
the table during an outage still holds when Redis is back.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from logmaster.api.models import Throttle, as_utc
from logmaster.api.problems import ProblemError
from logmaster.config import ApiSettings
from logmaster.redisstate import RedisState, RedisUnavailable, state_for

log = logging.getLogger(__name__)

USE = "throttle"

# KEYS: counter, lock. ARGV: window ms, limit, lockout ms. Returns 1 when this failure locked.
_FAILURE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def session_info(redis_url: str | None) -> dict[str, Any]:
    """``info`` for the database sessions of a process (``Session(engine, info=...)``)."""
    return {"redis_url": redis_url}


def _redis(session: Session) -> RedisState | None:
    return state_for(session.info.get("redis_url"))


def user_key(username: str) -> str:
    return f"user:{username.lower()[:150]}"


def ip_key(ip: str) -> str:
    return f"ip:{ip}"


def _locked(row: Throttle | None, now: dt.datetime) -> int:
    """Seconds the key stays locked (0 = not locked)."""
    until = as_utc(row.locked_until) if row is not None else None
    if until is None or until <= now:
        return 0
    return max(1, math.ceil((until - now).total_seconds()))


def locked_problem(kind: str, subject: str, seconds: int) -> ProblemError:
    minutes = max(1, math.ceil(seconds / 60))
    if kind == "account":
        en = (
            f"Too many failed sign-ins: account {subject} is locked for {minutes} more "
            "minute(s). Try again later or ask an administrator to unlock it."
        )
        tr = (
            f"Çok sayıda hatalı giriş: {subject} hesabı {minutes} dakika daha kilitli. Daha sonra "
            "tekrar deneyin veya yöneticinizden kilidi açmasını isteyin."
        )
        title = "Account locked"
    else:
        en = (
            f"Too many failed sign-ins from {subject}: this address is blocked for {minutes} "
            "more minute(s)."
        )
        tr = (
            f"{subject} adresinden çok sayıda hatalı giriş: bu adres {minutes} dakika daha engelli."
        )
        title = "Source address blocked"
    return ProblemError(
        429,
        f"{kind}-locked",
        en,
        tr,
        title=title,
        headers={"Retry-After": str(seconds)},
        retry_after_s=seconds,
    )


def _redis_locked(redis: RedisState | None, keys: list[str]) -> list[int]:
    """Seconds each key stays locked in Redis (zeros when Redis is off or unreachable)."""
    if redis is None:
        return [0 for _ in keys]

    def pttl(client: Any) -> list[int]:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.pttl(redis.key("lock", key))
        return [int(v) for v in pipe.execute()]

    try:
        found = redis.call(USE, pttl)
    except RedisUnavailable:
        return [0 for _ in keys]
    return [math.ceil(ms / 1000) if ms > 0 else 0 for ms in found]


def locked_seconds(session: Session, key: str, now: dt.datetime | None = None) -> int:
    """Seconds ``key`` (:func:`user_key` / :func:`ip_key`) stays locked, 0 when it is not."""
    now = now or dt.datetime.now(dt.UTC)
    (in_redis,) = _redis_locked(_redis(session), [key])
    return max(in_redis, _locked(session.get(Throttle, key), now))


def check(session: Session, username: str, ip: str, now: dt.datetime | None = None) -> None:
    """Raise 429 when the address or the account is locked."""
    now = now or dt.datetime.now(dt.UTC)
    in_redis = _redis_locked(_redis(session), [ip_key(ip), user_key(username)])
    seconds = max(in_redis[0], _locked(session.get(Throttle, ip_key(ip)), now))
    if seconds:
        raise locked_problem("address", ip, seconds)
    seconds = max(in_redis[1], _locked(session.get(Throttle, user_key(username)), now))
    if seconds:
        raise locked_problem("account", username, seconds)


def _count(session: Session, key: str, limit: int, settings: ApiSettings, now: dt.datetime) -> bool:
    redis = _redis(session)
    if redis is not None:
        try:
            return _count_redis(redis, key, limit, settings)
        except RedisUnavailable:
            pass  # counted in the table below; redisstate logged the outage once
    row = session.get(Throttle, key, with_for_update=True)
    window = dt.timedelta(seconds=settings.failure_window_s)
    if row is None:
        row = Throttle(key=key, failures=0, window_start=now)
        session.add(row)
    start = as_utc(row.window_start) or now
    if now - start > window or _locked_expired(row, now):
        row.failures, row.window_start, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= limit and row.locked_until is None:
        row.locked_until = now + dt.timedelta(seconds=settings.lockout_s)
        return True
    return False


def _count_redis(redis: RedisState, key: str, limit: int, settings: ApiSettings) -> bool:
    def run(client: Any) -> int:
        script = client.register_script(_FAILURE_LUA)
        keys = [redis.key("throttle", key), redis.key("lock", key)]
        args = [settings.failure_window_s * 1000, limit, settings.lockout_s * 1000]
        return int(script(keys=keys, args=args, client=client))

    return redis.call(USE, run) == 1


def _locked_expired(row: Throttle, now: dt.datetime) -> bool:
    until = as_utc(row.locked_until)
    return until is not None and until <= now


def failure(
    session: Session, settings: ApiSettings, username: str, ip: str, now: dt.datetime | None = None
) -> tuple[bool, bool]:
    """Count one failure; returns (account now locked, address now blocked)."""
    now = now or dt.datetime.now(dt.UTC)
    account = _count(session, user_key(username), settings.account_max_failures, settings, now)
    address = _count(session, ip_key(ip), settings.ip_max_failures, settings, now)
    return account, address


def _forget_redis(session: Session, keys: list[str], *, warn: bool = True) -> int:
    """Delete the counters and locks of ``keys`` in Redis; how many locks there were."""
    redis = _redis(session)
    if redis is None or not keys:
        return 0

    def delete(client: Any) -> int:
        pipe = client.pipeline(transaction=True)
        pipe.delete(*[redis.key("lock", k) for k in keys])
        pipe.delete(*[redis.key("throttle", k) for k in keys])
        locks, _counters = pipe.execute()
        return int(locks)

    try:
        return redis.call(USE, delete)
    except RedisUnavailable:
        if not warn:
            return 0
        log.warning(
            "Redis unreachable: its sign-in counters of these keys were not cleared and hold "
            "until they expire.",
            extra={"keys": ",".join(keys)},
        )
        return 0


def success(session: Session, username: str) -> None:
    session.execute(sa.delete(Throttle).where(Throttle.key == user_key(username)))
    # Redis down: nothing to clear there that could be checked meanwhile; no warning per login.
    _forget_redis(session, [user_key(username)], warn=False)


def unlock(session: Session, username: str | None = None, ip: str | None = None) -> int:
    keys = [k for k in (username and user_key(username), ip and ip_key(ip)) if k]
    if not keys:
        return 0
    result = session.execute(sa.delete(Throttle).where(Throttle.key.in_(keys)))
    return int(getattr(result, "rowcount", 0) or 0) + _forget_redis(session, keys)
