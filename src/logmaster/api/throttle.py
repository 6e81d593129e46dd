"""Brute-force defence: failed sign-ins counted per account and per source address.

``[api] account_max_failures`` failures of one username within ``failure_window_s`` lock the
account for ``lockout_s``; ``ip_max_failures`` from one address block that address for as long.
Counters live in the ``throttle`` table, so every API process sees the same ones. Unknown
usernames are counted like real ones (the answer never tells whether an account exists). A
successful sign-in clears the account's counter, not the address's (else one valid account
would let an attacker reset the address counter). ``logmaster user unlock`` clears both.
"""

from __future__ import annotations

import datetime as dt
import math

import sqlalchemy as sa
from sqlalchemy.orm import Session

from logmaster.api.models import Throttle, as_utc
from logmaster.api.problems import ProblemError
from logmaster.config import ApiSettings


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


def check(session: Session, username: str, ip: str, now: dt.datetime | None = None) -> None:
    """Raise 429 when the address or the account is locked."""
    now = now or dt.datetime.now(dt.UTC)
    seconds = _locked(session.get(Throttle, ip_key(ip)), now)
    if seconds:
        raise locked_problem("address", ip, seconds)
    seconds = _locked(session.get(Throttle, user_key(username)), now)
    if seconds:
        raise locked_problem("account", username, seconds)


def _count(session: Session, key: str, limit: int, settings: ApiSettings, now: dt.datetime) -> bool:
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


def success(session: Session, username: str) -> None:
    session.execute(sa.delete(Throttle).where(Throttle.key == user_key(username)))


def unlock(session: Session, username: str | None = None, ip: str | None = None) -> int:
    keys = [k for k in (username and user_key(username), ip and ip_key(ip)) if k]
    if not keys:
        return 0
    result = session.execute(sa.delete(Throttle).where(Throttle.key.in_(keys)))
    return int(getattr(result, "rowcount", 0) or 0)
