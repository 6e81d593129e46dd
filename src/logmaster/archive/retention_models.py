"""The retention tables (migration 0004): per-device retention policies and legal holds.

The rules that use them (who may set what, when a day may be purged) are in ``retention.py``,
which re-exports both classes (``retention.RetentionPolicy``, ``retention.LegalHold``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from logmaster.db import Base, utcnow

__all__ = ["LegalHold", "RetentionPolicy"]


class RetentionPolicy(Base):
    """A device whose retention differs from ``retention.default_days``."""

    __tablename__ = "retention_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    device: Mapped[str] = mapped_column(String(64), unique=True)
    days: Mapped[int] = mapped_column(Integer)
    allow_short_retention: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LegalHold(Base):
    """Days of a device (``device`` None: every device) that no purge may touch."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    device: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    case_ref: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(64), default=None)
    released_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    release_reason: Mapped[str | None] = mapped_column(Text, default=None)

    def covers(self, device: str, day: dt.date) -> bool:
        return (
            self.released_at is None
            and (self.device is None or self.device == device)
            and self.first_day <= day <= self.last_day
        )

    def describe(self) -> str:
        who = self.device or "all devices"
        case = f" case {self.case_ref}" if self.case_ref else ""
        return f"legal hold #{self.id} ({who} {self.first_day}..{self.last_day}{case})"
