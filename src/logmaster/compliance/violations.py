"""Violations: what breaks Law 5651 compliance, opened and resolved with their times in the DB.

Kinds (``KINDS``), each keyed by a *subject* so that one condition is one open violation:

==================  ===========================  ============================================
kind                subject                      open while
==================  ===========================  ============================================
seal_overdue        ``<device> <YYYY-MM-DD>``    the day has lines but no manifest, or an
                                                 approved device has neither (no declared
                                                 silence), ``seal_deadline_h`` after its
                                                 local midnight
stamp_pending       ``<device> <YYYY-MM-DD>``    sealed, no RFC 3161 token
                                                 ``stamp_pending_max_h`` after sealing
device_silent       ``<device>``                 no line for longer than the device's
                                                 threshold (``silence_thresholds`` or learned)
clock_skew          ``<device>``                 the newest sealed day's median clock offset
                                                 is beyond ``clock_skew_max_s``
archive_disk        ``archive``                  the archive's file system is fuller than
                                                 ``disk_warn_percent`` (critical from
                                                 ``disk_critical_percent``)
retention_at_risk   ``<device>``                 retention set below 730 days, or the oldest
                                                 day retention requires is missing
==================  ===========================  ============================================

A learned silence threshold: over the device's last 14 sealed days, the median of each day's
longest silence between two lines (the manifests list gaps over ``seal.silence_threshold_s``)
times 1.5, or 30 times the median mean gap between lines, whichever is longer, bounded by
``silence_min_s`` .. ``silence_max_s``. Fewer than 3 days: ``silence_default_s``. Medians over
days make one unusual day (a maintenance window) move nothing.

:class:`Evaluator` makes one pass (``run_once``; ``run`` loops every ``interval_s``, for the
sealer or the supervisor): it computes the conditions that hold now, opens a violation for each
new one, resolves open ones that no longer hold, queues an alert for each change
(:mod:`logmaster.compliance.alerts`; delivery happens in the dispatcher's own thread, so a dead
mail server never slows a pass) and verifies newly sealed days within ``verify_budget_s``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from logmaster.archive import manifest as mf
from logmaster.compliance.status import DayStatus, StatusCache
from logmaster.db import Base, Device, utcnow

if TYPE_CHECKING:
    from logmaster.compliance.alerts import Dispatcher
    from logmaster.config import Settings

log = logging.getLogger(__name__)

KINDS = (
    "seal_overdue",
    "stamp_pending",
    "device_silent",
    "clock_skew",
    "archive_disk",
    "retention_at_risk",
)
MIN_RETENTION_DAYS = 730
LEARN_DAYS = 14
LEARN_MIN_DAYS = 3
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


def _utc(when: dt.datetime | None) -> dt.datetime | None:
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _iso(when: dt.datetime | None) -> str | None:
    w = _utc(when)
    return w.isoformat(timespec="seconds") if w else None


def _dmy(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def _duration(seconds: float) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h} h {rest // 60} min" if h else f"{rest // 60} min"


@dataclass
class Condition:
    """A violation condition that holds now."""

    kind: str
    subject: str
    severity: str
    message: str
    message_tr: str
    device: str | None = None
    day: dt.date | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceRow:
    slug: str
    zone: ZoneInfo
    status: str
    location: str
    created: dt.datetime | None
    last_seen: dt.datetime | None


def device_rows(engine: Engine, default_zone: str) -> dict[str, DeviceRow]:
    with Session(engine) as s:
        rows = s.execute(
            sa.select(
                Device.slug,
                Device.timezone,
                Device.status,
                Device.location,
                Device.created_at,
                Device.last_seen_at,
            )
        ).all()
    out = {}
    for slug, tz, status, location, created, seen in rows:
        try:
            zone = ZoneInfo(tz)
        except (ValueError, KeyError):
            zone = ZoneInfo(default_zone)
        out[slug] = DeviceRow(slug, zone, status, location or "", _utc(created), _utc(seen))
    return out


def retention_days(settings: Settings, engine: Engine, slugs: list[str]) -> dict[str, int]:
    """Retention per device (``retention_policies``, else ``retention.default_days``)."""
    from logmaster.archive.retention import overview

    with Session(engine) as s:
        return {p.device: p.days for p in overview(s, settings, slugs)}


# -- learning a device's silence threshold ---------------------------------------------------


def learned_threshold(settings: Settings, days: list[DayStatus]) -> tuple[int, str]:
    """(seconds, how) from the device's recent sealed days."""
    c = settings.compliance
    usable = [
        d for d in days if d.sealed and d.lines >= 2 and d.first_received and d.last_received
    ][-LEARN_DAYS:]
    if len(usable) < LEARN_MIN_DAYS:
        return c.silence_default_s, "default"
    mean_gaps: list[float] = []
    longest: list[float] = []
    for d in usable:
        assert d.first_received is not None and d.last_received is not None
        first = dt.datetime.fromisoformat(d.first_received)
        last = dt.datetime.fromisoformat(d.last_received)
        mean_gaps.append((last - first).total_seconds() / (d.lines - 1))
        inner = [
            float(g["seconds"])
            for g in d.gaps
            if dt.datetime.fromisoformat(g["from"]) >= first
            and dt.datetime.fromisoformat(g["to"]) <= last
        ]
        longest.append(max(inner, default=0.0))
    value = max(1.5 * statistics.median(longest), 30 * statistics.median(mean_gaps))
    bounded = int(min(max(value, c.silence_min_s), c.silence_max_s))
    return bounded, f"learned from {len(usable)} days"


# -- the evaluator --------------------------------------------------------------------------


@dataclass
class Outcome:
    opened: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    open_now: int = 0
    verified: int = 0
    error: str | None = None


def _unsealed(st: DayStatus, row: DeviceRow | None, end: dt.datetime) -> bool:
    """The day has lines but no manifest, or its approved device (registered before the day
    ended) has neither a day file nor a declared silence."""
    expected = (
        row is not None and row.status == "approved" and (row.created is None or row.created < end)
    )
    return st.state == "open" or (st.state == "no_data" and expected)


class Evaluator:
    """Computes the conditions that hold and keeps the violations table in step with them."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        *,
        cache: StatusCache | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        from logmaster.db import make_engine

        self.settings = settings
        self._own_engine = engine is None
        self.engine = engine or make_engine(settings.db_url)
        self.cache = cache or StatusCache(settings)
        self.dispatcher = dispatcher
        self._learned: dict[tuple[str, dt.date], tuple[int, str]] = {}
        self.passes = 0
        self.failures = 0
        # Device-days due for sealing (local day over + seal.delay_s) without a manifest, as
        # of the last pass that computed the conditions; None before the first.
        self.overdue_days: int | None = None

    def close(self) -> None:
        self.cache.close()
        if self._own_engine:
            self.engine.dispose()

    # -- conditions ------------------------------------------------------------------------

    def conditions(self, now: dt.datetime) -> tuple[list[Condition], set[str]]:
        """(conditions holding at ``now``, kinds fully evaluated)."""
        from logmaster.archive.seal import archive_devices, day_end

        c = self.settings.compliance
        devices = device_rows(self.engine, self.settings.devices.default_timezone)
        default_zone = ZoneInfo(self.settings.devices.default_timezone)
        slugs = sorted(
            {d for d in archive_devices(self.settings.archive_dir)}
            | {s for s, r in devices.items() if r.status == "approved"}
        )
        slugs = [s for s in slugs if devices.get(s) is None or devices[s].status != "rejected"]
        today = now.astimezone(default_zone).date()
        first = today - dt.timedelta(days=c.window_days)
        out: list[Condition] = []
        by_device: dict[str, list[DayStatus]] = {}
        for st in self.cache.statuses(first, today, slugs, fill=True):
            by_device.setdefault(st.device, []).append(st)
        deadline = dt.timedelta(hours=c.seal_deadline_h)
        due = dt.timedelta(seconds=self.settings.seal.delay_s)
        overdue = 0
        for slug, statuses in by_device.items():
            row = devices.get(slug)
            zone = row.zone if row else default_zone
            for st in statuses:
                cond = self._day_condition(st, row, zone, now, deadline, day_end)
                if cond is not None:
                    out.append(cond)
                end = day_end(st.day, zone)
                overdue += now >= end + due and _unsealed(st, row, end)
            out.extend(self._device_conditions(slug, row, statuses, now))
        self.overdue_days = overdue
        out.extend(self._disk_conditions())
        out.extend(self._retention_conditions(devices, slugs, today, first, now))
        return out, set(KINDS)

    def _day_condition(
        self,
        st: DayStatus,
        row: DeviceRow | None,
        zone: ZoneInfo,
        now: dt.datetime,
        deadline: dt.timedelta,
        day_end: Any,
    ) -> Condition | None:
        c = self.settings.compliance
        end = day_end(st.day, zone)
        subject = f"{st.device} {st.day.isoformat()}"
        if now >= end + deadline and _unsealed(st, row, end):
            what = (
                f"{st.lines} lines not sealed"
                if st.state == "open"
                else "no day file and no declared silence"
            )
            what_tr = (
                f"{st.lines} satır mühürlenmedi"
                if st.state == "open"
                else "gün dosyası da sessizlik beyanı da yok"
            )
            late = (now - end).total_seconds()
            return Condition(
                "seal_overdue",
                subject,
                "critical",
                f"{st.device} {_dmy(st.day)}: {what}, {_duration(late)} after the day ended "
                f"(deadline {c.seal_deadline_h:g} h). Check the sealer (`logmaster seal "
                f"--date {st.day.isoformat()}`).",
                f"{st.device} {_dmy(st.day)}: {what_tr}; gün {_duration(late)} önce bitti "
                f"(süre {c.seal_deadline_h:g} saat). Mühürleyiciyi kontrol edin.",
                st.device,
                st.day,
                {"state": st.state, "lines": st.lines},
            )
        if st.state == "stamp_pending" and st.sealed_at:
            waited = (now - dt.datetime.fromisoformat(st.sealed_at)).total_seconds()
            if waited > c.stamp_pending_max_h * 3600:
                return Condition(
                    "stamp_pending",
                    subject,
                    "warning" if waited < 3 * c.stamp_pending_max_h * 3600 else "critical",
                    f"{st.device} {_dmy(st.day)}: sealed {_duration(waited)} ago and still "
                    "without an RFC 3161 timestamp. Check the TSA (`logmaster seal "
                    "--retry-stamps`).",
                    f"{st.device} {_dmy(st.day)}: {_duration(waited)} önce mühürlendi, zaman "
                    "damgası hâlâ yok. Zaman damgası sunucusunu kontrol edin.",
                    st.device,
                    st.day,
                    {"sealed_at": st.sealed_at, "tsa": st.tsa},
                )
        return None

    def threshold(self, slug: str, statuses: list[DayStatus], today: dt.date) -> tuple[int, str]:
        configured = self.settings.compliance.silence_thresholds.get(slug)
        if configured is not None:
            return configured, "configured"
        key = (slug, today)
        if key not in self._learned:
            self._learned = {k: v for k, v in self._learned.items() if k[1] == today}
            self._learned[key] = learned_threshold(
                self.settings, [s for s in statuses if s.day < today]
            )
        return self._learned[key]

    def _device_conditions(
        self, slug: str, row: DeviceRow | None, statuses: list[DayStatus], now: dt.datetime
    ) -> list[Condition]:
        c = self.settings.compliance
        out: list[Condition] = []
        if row is not None and row.status == "approved":
            since = row.last_seen or row.created
            if since is not None:
                quiet = (now - since).total_seconds()
                limit, how = self.threshold(slug, statuses, now.astimezone(row.zone).date())
                if quiet > limit:
                    seen = since.astimezone(row.zone).strftime("%d.%m.%Y %H:%M")
                    out.append(
                        Condition(
                            "device_silent",
                            slug,
                            "critical" if quiet > 4 * limit else "warning",
                            f"{slug} has sent nothing for {_duration(quiet)} (last line "
                            f"{seen}; threshold {_duration(limit)}, {how}). Check the device "
                            "and its syslog target.",
                            f"{slug} {_duration(quiet)} süredir log göndermiyor (son satır "
                            f"{seen}; eşik {_duration(limit)}). Cihazı ve syslog hedefini "
                            "kontrol edin.",
                            slug,
                            None,
                            {
                                "last_seen_at": since.isoformat(timespec="seconds"),
                                "threshold_s": limit,
                                "threshold_source": how,
                            },
                        )
                    )
        newest = next(
            (s for s in reversed(statuses) if s.sealed and s.clock_offset_s is not None), None
        )
        if newest is not None and newest.clock_offset_s is not None:
            off = newest.clock_offset_s
            if abs(off) > c.clock_skew_max_s:
                out.append(
                    Condition(
                        "clock_skew",
                        slug,
                        "warning",
                        f"{slug}: the device clock is {off:+.0f} s off the receive time "
                        f"(median on {_dmy(newest.day)}; limit {c.clock_skew_max_s:g} s). "
                        "Point the device at an NTP server.",
                        f"{slug}: cihaz saati alış zamanından {off:+.0f} sn sapmış "
                        f"({_dmy(newest.day)} medyanı; sınır {c.clock_skew_max_s:g} sn). "
                        "Cihazı bir NTP sunucusuna yönlendirin.",
                        slug,
                        newest.day,
                        {"median_s": off, "max_abs_s": newest.clock_max_abs_s},
                    )
                )
        return out

    def _disk_conditions(self) -> list[Condition]:
        c = self.settings.compliance
        path = self.settings.archive_dir
        while not path.exists() and path != path.parent:
            path = path.parent
        st = os.statvfs(path)
        used_blocks = st.f_blocks - st.f_bfree
        usable = used_blocks + st.f_bavail
        if usable <= 0:
            return []
        percent = 100.0 * used_blocks / usable
        if percent < c.disk_warn_percent:
            return []
        free = st.f_bavail * st.f_frsize
        return [
            Condition(
                "archive_disk",
                "archive",
                "critical" if percent >= c.disk_critical_percent else "warning",
                f"The archive file system ({path}) is {percent:.1f} % full, "
                f"{free / 2**30:.1f} GiB free (warning from {c.disk_warn_percent:g} %). Add "
                "space before the collector has to hold lines back.",
                f"Arşiv dosya sistemi ({path}) %{percent:.1f} dolu, {free / 2**30:.1f} GiB boş "
                f"(uyarı eşiği %{c.disk_warn_percent:g}). Toplayıcı satırları bekletmek zorunda "
                "kalmadan yer açın.",
                None,
                None,
                {"path": str(path), "used_percent": round(percent, 2), "free_bytes": free},
            )
        ]

    def _retention_conditions(
        self,
        devices: dict[str, DeviceRow],
        slugs: list[str],
        today: dt.date,
        window_start: dt.date,
        now: dt.datetime,
    ) -> list[Condition]:
        out = []
        policy = retention_days(self.settings, self.engine, slugs)
        for slug in slugs:
            days = policy.get(slug, MIN_RETENTION_DAYS)
            row = devices.get(slug)
            if days < MIN_RETENTION_DAYS:
                out.append(
                    Condition(
                        "retention_at_risk",
                        slug,
                        "warning",
                        f"{slug}: retention is set to {days} days, below the legal minimum of "
                        f"{MIN_RETENTION_DAYS} days.",
                        f"{slug}: saklama süresi {days} gün; yasal alt sınır "
                        f"{MIN_RETENTION_DAYS} gün.",
                        slug,
                        None,
                        {"retention_days": days, "reason": "below_minimum"},
                    )
                )
                continue
            if row is None or row.created is None:
                continue
            created = row.created.astimezone(row.zone).date()
            # retention.past_retention: a day is purged once (today - day) > days.
            oldest = max(created, today - dt.timedelta(days=days))
            # Recent days are seal_overdue's business; retention looks at the far end only.
            if oldest >= window_start:
                continue
            if not mf.parts(self.settings.archive_dir, slug, oldest):
                out.append(
                    Condition(
                        "retention_at_risk",
                        slug,
                        "critical",
                        f"{slug}: {_dmy(oldest)}, the oldest day retention ({days} days) "
                        "requires, is missing from the archive (no day file, no manifest).",
                        f"{slug}: saklama süresinin ({days} gün) gerektirdiği en eski gün "
                        f"{_dmy(oldest)} arşivde yok (gün dosyası da manifest de yok).",
                        slug,
                        oldest,
                        {"retention_days": days, "reason": "oldest_day_missing"},
                    )
                )
        return out

    # -- keeping the table in step -------------------------------------------------------------

    def run_once(self, now: dt.datetime | None = None) -> Outcome:
        """One pass: open, update and resolve violations; queue alerts; verify a little."""
        now = now or dt.datetime.now(dt.UTC)
        outcome = Outcome()
        self.passes += 1
        try:
            holding, kinds = self.conditions(now)
            holding.extend(self._rechecks(now, holding))
            outcome = self.apply(holding, kinds, now)
        except (OSError, SQLAlchemyError, ValueError) as exc:
            self.failures += 1
            log.error("Compliance evaluation failed; next pass.", extra={"error": str(exc)})
            return Outcome(error=str(exc))
        if self.settings.compliance.verify_budget_s > 0:
            outcome.verified = self.verify_some(now)
        if self.dispatcher is not None:
            self.dispatcher.wake()
        return outcome

    def _rechecks(self, now: dt.datetime, holding: list[Condition]) -> list[Condition]:
        """Open day violations older than the window: still true?"""
        from logmaster.archive.seal import day_end

        c = self.settings.compliance
        default_zone = ZoneInfo(self.settings.devices.default_timezone)
        first = now.astimezone(default_zone).date() - dt.timedelta(days=c.window_days)
        seen = {(h.kind, h.subject) for h in holding}
        with Session(self.engine) as s:
            old = s.execute(
                sa.select(Violation.kind, Violation.device, Violation.day).where(
                    Violation.resolved_at.is_(None),
                    Violation.kind.in_(("seal_overdue", "stamp_pending")),
                    Violation.day < first,
                )
            ).all()
        if not old:
            return []
        devices = device_rows(self.engine, self.settings.devices.default_timezone)
        out = []
        for _kind, slug, day in old:
            if slug is None or day is None:
                continue
            st = self.cache.day(slug, day)
            row = devices.get(slug)
            zone = row.zone if row else default_zone
            cond = self._day_condition(
                st, row, zone, now, dt.timedelta(hours=c.seal_deadline_h), day_end
            )
            if cond is not None and (cond.kind, cond.subject) not in seen:
                out.append(cond)
        return out

    def apply(self, holding: list[Condition], kinds: set[str], now: dt.datetime) -> Outcome:
        outcome = Outcome()
        wanted = {(c.kind, c.subject): c for c in holding}
        with Session(self.engine) as s:
            open_rows = {
                (v.kind, v.subject): v
                for v in s.scalars(sa.select(Violation).where(Violation.resolved_at.is_(None)))
            }
            changed: list[tuple[Violation, str]] = []
            for key, cond in wanted.items():
                row = open_rows.get(key)
                if row is None:
                    row = Violation(
                        kind=cond.kind,
                        subject=cond.subject,
                        device=cond.device,
                        day=cond.day,
                        severity=cond.severity,
                        message=cond.message,
                        message_tr=cond.message_tr,
                        details=cond.details,
                        opened_at=now,
                        checked_at=now,
                    )
                    s.add(row)
                    changed.append((row, "opened"))
                else:
                    row.severity, row.message, row.message_tr = (
                        cond.severity,
                        cond.message,
                        cond.message_tr,
                    )
                    row.details, row.checked_at = cond.details, now
            for key, row in open_rows.items():
                if key not in wanted and row.kind in kinds:
                    row.resolved_at = now
                    row.checked_at = now
                    changed.append((row, "resolved"))
            try:
                s.flush()
                if self.dispatcher is not None:
                    for row, event in changed:
                        self.dispatcher.enqueue(s, row, event, now)
                s.commit()
            except IntegrityError as exc:
                # Another evaluator (a second node) opened the same violation first.
                s.rollback()
                raise ValueError(f"concurrent evaluation: {exc.orig}") from exc
            for row, event in changed:
                (outcome.opened if event == "opened" else outcome.resolved).append(row.to_json())
                log.log(
                    logging.WARNING if event == "opened" else logging.INFO,
                    f"Violation {event}.",
                    extra={"kind": row.kind, "subject": row.subject, "severity": row.severity},
                )
            outcome.open_now = (
                s.scalar(
                    sa.select(sa.func.count(Violation.id)).where(Violation.resolved_at.is_(None))
                )
                or 0
            )
        return outcome

    # -- verification within a budget ---------------------------------------------------------

    def verify_some(self, now: dt.datetime) -> int:
        """Verify sealed days that have no verdict yet, newest first, for at most the budget."""
        from logmaster.archive.verdict import trust_from, verify_device

        budget = self.settings.compliance.verify_budget_s
        today = now.date()
        todo = self.cache.unverified(today - dt.timedelta(days=7), today)
        if not todo:
            return 0
        trust = trust_from(self.settings)
        start = time.monotonic()
        done = 0
        for device, day in sorted(todo, key=lambda t: t[1], reverse=True):
            if time.monotonic() - start > budget:
                break
            verdicts = verify_device(self.settings.archive_dir, device, day, day, trust)
            done += self.cache.record_verdicts(verdicts)
        return done

    def run(self, stop: threading.Event) -> None:
        """Pass every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the loop must survive anything one pass meets
                self.failures += 1
                log.exception("Compliance pass failed; next pass.", extra={"error": str(exc)})
            stop.wait(self.settings.compliance.interval_s)


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
