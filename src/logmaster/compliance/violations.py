"""Violations: what breaks Law 5651 compliance, opened and resolved with their times in the DB.

This module holds what is stored and read back: the ``violations`` table (one row per
condition, kind + subject, from the time it was first seen until it no longer held), the
``alert_deliveries`` table of the alerts sent for them (both from migration 0005), the kinds
with their English and Turkish titles, and :func:`list_violations` for the CLI, the API and the
reports. What each kind means and how it is computed is in :mod:`logmaster.compliance.checks`;
the pass that keeps this table in step with the archive is
:class:`logmaster.compliance.evaluator.Evaluator`. Kept apart so that readers of the table
(API, reports, alerts) need neither the checks nor the evaluator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from logmaster.db import Base, utcnow

KINDS = (
    "seal_overdue",
    "stamp_pending",
    "device_silent",
    "clock_skew",
    "archive_disk",
    "retention_at_risk",
)
TEXTS = {
    "seal_overdue": ("Day not sealed", "Gün mühürlenmedi"),
    "stamp_pending": ("Timestamp pending", "Zaman damgası bekliyor"),
    "device_silent": ("Device silent", "Cihaz sessiz"),
    "clock_skew": ("Device clock skew", "Cihaz saat sapması"),
    "archive_disk": ("Archive disk filling", "Arşiv diski doluyor"),
    "retention_at_risk": ("Retention at risk", "Saklama süresi risk altında"),
}


class Violation(Base):
    """One violation: a condition that held from ``opened_at`` until ``resolved_at``."""

    __tablename__ = "violations"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(64), default=None)
    day: Mapped[dt.date | None] = mapped_column(Date, default=None)
    severity: Mapped[str] = mapped_column(String(16))  # warning | critical
    message: Mapped[str] = mapped_column(Text)
    message_tr: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def to_json(self) -> dict[str, Any]:
        title, title_tr = TEXTS.get(self.kind, (self.kind, self.kind))
        return {
            "id": self.id,
            "kind": self.kind,
            "title": title,
            "title_tr": title_tr,
            "subject": self.subject,
            "device": self.device,
            "day": self.day.isoformat() if self.day else None,
            "severity": self.severity,
            "message": self.message,
            "message_tr": self.message_tr,
            "details": self.details,
            "opened_at": _iso(self.opened_at),
            "resolved_at": _iso(self.resolved_at),
        }


class AlertDelivery(Base):
    """One alert (a violation opened or resolved) to one channel, until sent or given up."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(8))  # opened | resolved
    channel: Mapped[str] = mapped_column(String(16))  # webhook | email | syslog
    state: Mapped[str] = mapped_column(String(8), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def as_utc(when: dt.datetime | None) -> dt.datetime | None:
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _iso(when: dt.datetime | None) -> str | None:
    w = as_utc(when)
    return w.isoformat(timespec="seconds") if w else None


# -- reading ---------------------------------------------------------------------------------


def list_violations(
    session: Session,
    *,
    open_only: bool = False,
    devices: set[str] | None = None,
    include_global: bool = True,
    kind: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 500,
) -> list[Violation]:
    """Violations newest first; ``since``/``until`` select those open at some time in between."""
    q = sa.select(Violation).order_by(Violation.opened_at.desc(), Violation.id.desc())
    if open_only:
        q = q.where(Violation.resolved_at.is_(None))
    if kind:
        q = q.where(Violation.kind == kind)
    if devices is not None:
        scope = Violation.device.in_(sorted(devices) or [""])
        q = q.where(sa.or_(scope, Violation.device.is_(None)) if include_global else scope)
    if until is not None:
        q = q.where(Violation.opened_at < until)
    if since is not None:
        q = q.where(sa.or_(Violation.resolved_at.is_(None), Violation.resolved_at >= since))
    return list(session.scalars(q.limit(limit)))
