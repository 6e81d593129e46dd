"""The checks: which violation conditions hold now, one function per kind (or pair of kinds).

Kinds (``violations.KINDS``), each keyed by a *subject* so that one condition is one open
violation:

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

The checks only read (device rows, day statuses, statvfs, retention policies) and return
:class:`Condition` objects with their bilingual messages; opening and resolving rows is
:class:`logmaster.compliance.evaluator.Evaluator`'s business. Apart from it so that each rule
and its wording can be read (and tested) on its own.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from logmaster.archive import manifest as mf
from logmaster.compliance.status import DayStatus
from logmaster.compliance.violations import as_utc
from logmaster.db import Device

if TYPE_CHECKING:
    from logmaster.config import Settings

MIN_RETENTION_DAYS = 730
LEARN_DAYS = 14
LEARN_MIN_DAYS = 3


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
        out[slug] = DeviceRow(slug, zone, status, location or "", as_utc(created), as_utc(seen))
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


# -- the checks ------------------------------------------------------------------------------


def unsealed(st: DayStatus, row: DeviceRow | None, end: dt.datetime) -> bool:
    """The day has lines but no manifest, or its approved device (registered before the day
    ended) has neither a day file nor a declared silence."""
    expected = (
        row is not None and row.status == "approved" and (row.created is None or row.created < end)
    )
    return st.state == "open" or (st.state == "no_data" and expected)


def day_condition(
    settings: Settings,
    st: DayStatus,
    row: DeviceRow | None,
    zone: ZoneInfo,
    now: dt.datetime,
    deadline: dt.timedelta,
    day_end: Any,
) -> Condition | None:
    """The ``seal_overdue`` or ``stamp_pending`` condition of one device-day, if it holds
    (``day_end`` is :func:`logmaster.archive.seal.day_end`, imported by the caller)."""
    c = settings.compliance
    end = day_end(st.day, zone)
    subject = f"{st.device} {st.day.isoformat()}"
    if now >= end + deadline and unsealed(st, row, end):
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


def device_conditions(
    settings: Settings,
    slug: str,
    row: DeviceRow | None,
    statuses: list[DayStatus],
    now: dt.datetime,
    threshold: Callable[[str, list[DayStatus], dt.date], tuple[int, str]],
) -> list[Condition]:
    """``device_silent`` (against ``threshold(slug, statuses, local today)``) and ``clock_skew``."""
    c = settings.compliance
    out: list[Condition] = []
    if row is not None and row.status == "approved":
        since = row.last_seen or row.created
        if since is not None:
            quiet = (now - since).total_seconds()
            limit, how = threshold(slug, statuses, now.astimezone(row.zone).date())
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


def disk_conditions(settings: Settings) -> list[Condition]:
    """``archive_disk``: statvfs of the archive's file system against the thresholds."""
    c = settings.compliance
    path = settings.archive_dir
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


def retention_conditions(
    settings: Settings,
    engine: Engine,
    devices: dict[str, DeviceRow],
    slugs: list[str],
    today: dt.date,
    window_start: dt.date,
    now: dt.datetime,
) -> list[Condition]:
    """``retention_at_risk``: retention below the minimum, or its oldest day missing."""
    out = []
    policy = retention_days(settings, engine, slugs)
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
                    f"{slug}: saklama süresi {days} gün; yasal alt sınır {MIN_RETENTION_DAYS} gün.",
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
        if not mf.parts(settings.archive_dir, slug, oldest):
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
