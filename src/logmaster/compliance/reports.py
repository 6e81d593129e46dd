"""The monthly compliance report: JSON and PDF, signed and time-stamped like a sealed day.

``write_report(settings, 2026, 11, location=None)`` writes, under
``<data>/reports/YYYY-MM/``::

    compliance-2026-11[-<location>].json        the figures (format logmaster-compliance-report/1)
    compliance-2026-11[-<location>].json.p7s    detached CMS signature (operator key)
    compliance-2026-11[-<location>].json.tsr    RFC 3161 token (queued and retried when the TSA
                                                is away, like a seal's stamp)
    compliance-2026-11[-<location>].pdf         the same in Turkish and English, with charts
    compliance-2026-11[-<location>].pdf.p7s / .pdf.tsr

What it states, per device of the organisation (or of one location): the days the device was
expected to deliver in the month (from its registration or its first file, up to the report
day), how many were sealed (declared silences count: a declared silence is compliant), coverage
= sealed / expected, lines, silence gaps, stamps by TSA (accredited or built-in), verification
verdicts on record, parse-failure rate, retention (with any explicit setting below 730 days);
and the violations open at some time in the month with their opening and resolution.

The PDF is drawn by :mod:`logmaster.compliance.report_pdf` (DejaVu Sans embedded, so Turkish
letters render and ``pdftotext`` extracts them).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from logmaster import __version__
from logmaster.compliance.checks import MIN_RETENTION_DAYS
from logmaster.compliance.status import DayStatus, StatusCache
from logmaster.compliance.violations import list_violations
from logmaster.db import Device

if TYPE_CHECKING:
    from logmaster.archive.keys import Signer
    from logmaster.archive.tsa import Stamper
    from logmaster.config import Settings

FORMAT = "logmaster-compliance-report/1"
REPORTS_DIR = "reports"
_NAME = re.compile(r"^compliance-(\d{4})-(\d{2})(?:-([a-z0-9][a-z0-9._-]*))?\.json$")


class ReportError(Exception):
    """A report that cannot be made; the message says why and what to do."""


# -- the figures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportDevice:
    slug: str
    name: str
    location: str
    zone: ZoneInfo
    status: str
    created: dt.date | None


_TURKISH = str.maketrans("çğıİöşüÇĞÖŞÜâîûÂÎÛ", "cgiiosuCGOSUaiuAIU")


def location_slug(location: str) -> str:
    """A file-name form of a location: ``İstanbul Merkez`` -> ``istanbul-merkez``."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", location.translate(_TURKISH).lower()).strip("-.")
    return slug or "location"


def report_stem(year: int, month: int, location: str | None) -> str:
    base = f"compliance-{year:04d}-{month:02d}"
    return f"{base}-{location_slug(location)}" if location else base


def _devices(engine: Engine, settings: Settings, location: str | None) -> list[ReportDevice]:
    """Devices of the report (all but rejected ones; of one location when asked)."""
    from logmaster.archive.seal import archive_devices

    default = settings.devices.default_timezone
    names: dict[int, str] = {}
    with Session(engine) as s:
        try:
            from logmaster.api.models import DEVICE_LOCATION, Location

            names = dict(s.execute(sa.select(Location.id, Location.name)).all())
            ids = dict(
                s.execute(sa.select(DEVICE_LOCATION.c.slug, DEVICE_LOCATION.c.location_id)).all()
            )
        except sa.exc.SQLAlchemyError:
            s.rollback()
            ids = {}
        rows = s.execute(
            sa.select(
                Device.slug,
                Device.name,
                Device.location,
                Device.timezone,
                Device.status,
                Device.created_at,
            )
        ).all()
    out: dict[str, ReportDevice] = {}
    for slug, name, loc, tz, status, created_at in rows:
        if status == "rejected":
            continue
        where = names.get(ids.get(slug) or -1) or loc or ""
        zone = ZoneInfo(tz or default)
        created = created_at
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        day = created.astimezone(zone).date() if created else None
        out[slug] = ReportDevice(slug, name or "", where, zone, status, day)
    for slug in archive_devices(settings.archive_dir):
        if slug not in out:
            out[slug] = ReportDevice(slug, "", "", ZoneInfo(default), "unknown", None)
    chosen = [d for d in out.values() if location is None or d.location == location]
    return sorted(chosen, key=lambda d: d.slug)


def _device_figures(
    device: ReportDevice, statuses: list[DayStatus], last_day: dt.date
) -> dict[str, Any]:
    with_data = [s for s in statuses if s.state != "no_data"]
    start = min(
        [d for d in [device.created, with_data[0].day if with_data else None] if d is not None],
        default=None,
    )
    expected = [s for s in statuses if s.day <= last_day and (start is None or s.day >= start)]
    if start is None:
        expected = [s for s in expected if s.state != "no_data"]
    states: dict[str, int] = {}
    for s in expected:
        states[s.state] = states.get(s.state, 0) + 1
    sealed = sum(1 for s in expected if s.sealed)
    stamps: dict[str, dict[str, Any]] = {}
    verified: dict[str, int] = {}
    indexed = failures = 0
    gap_list: list[dict[str, Any]] = []
    for s in expected:
        if s.stamped and s.tsa:
            entry = stamps.setdefault(s.tsa, {"tsa": s.tsa, "accredited": bool(s.accredited)})
            entry["days"] = entry.get("days", 0) + 1
        if s.verified:
            verified[s.verified] = verified.get(s.verified, 0) + 1
        if s.lines_indexed:
            indexed += s.lines_indexed
            failures += s.parse_failures or 0
        if not s.declared_silence:
            gap_list.extend({"day": s.day.isoformat(), **g} for g in s.gaps)
    return {
        "device": device.slug,
        "name": device.name,
        "location": device.location,
        "timezone": device.zone.key,
        "status": device.status,
        "expected_days": len(expected),
        "sealed_days": sealed,
        "silence_days": states.get("silence", 0),
        "stamp_pending_days": states.get("stamp_pending", 0),
        "unsealed_days": states.get("open", 0),
        "missing_days": states.get("no_data", 0),
        "coverage": round(sealed / len(expected), 4) if expected else None,
        "lines": sum(s.lines for s in expected),
        "gaps": {
            "count": len(gap_list),
            "seconds": sum(int(g.get("seconds") or 0) for g in gap_list),
            "longest": sorted(gap_list, key=lambda g: -int(g.get("seconds") or 0))[:5],
        },
        "stamps": sorted(stamps.values(), key=lambda e: e["tsa"]),
        "verified": verified,
        "parse_failure_rate": round(failures / indexed, 6) if indexed else None,
    }


def build_report(
    settings: Settings,
    year: int,
    month: int,
    location: str | None = None,
    *,
    engine: Engine | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The report's figures (the JSON document)."""
    from logmaster.archive.retention import overview
    from logmaster.db import make_engine

    if not 1 <= month <= 12:
        raise ReportError(f"month {month} does not exist: use YYYY-MM")
    now = now or dt.datetime.now(dt.UTC)
    zone = ZoneInfo(settings.devices.default_timezone)
    first = dt.date(year, month, 1)
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    today = now.astimezone(zone).date()
    if first >= today:
        raise ReportError(
            f"{first:%m.%Y} has not started yet (or starts today): report a past month"
        )
    # Only finished days: today is still being written.
    last_day = min(last, today - dt.timedelta(days=1))
    own = engine is None
    engine = engine or make_engine(settings.db_url)
    try:
        devices = _devices(engine, settings, location)
        if location is not None and not devices:
            raise ReportError(f"no device has the location {location!r}")
        cache = StatusCache(settings)
        try:
            by_device: dict[str, list[DayStatus]] = {}
            for st in cache.statuses(first, last, [d.slug for d in devices], fill=True):
                by_device.setdefault(st.device, []).append(st)
        finally:
            cache.close()
        rows = [_device_figures(d, by_device.get(d.slug, []), last_day) for d in devices]
        slugs = {d.slug for d in devices}
        with Session(engine) as s:
            policies = {p.device: p for p in overview(s, settings, sorted(slugs))}
            start = dt.datetime.combine(first, dt.time(), zone)
            end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
            violations = [
                v.to_json()
                for v in list_violations(
                    s,
                    devices=slugs,
                    include_global=location is None,
                    since=start,
                    until=end,
                    limit=100_000,
                )
            ]
    finally:
        if own:
            engine.dispose()
    for row in rows:
        p = policies.get(row["device"])
        row["retention"] = {
            "days": p.days if p else settings.retention.default_days,
            "source": p.source if p else "default",
            "below_minimum": bool(p and p.days < MIN_RETENTION_DAYS),
            "allow_short_retention": bool(p and p.allow_short_retention),
            "set_by": p.set_by if p else None,
            "set_at": p.set_at.isoformat() if p and p.set_at else None,
            "reason": p.reason if p else "",
        }
    stamps: dict[str, dict[str, Any]] = {}
    for row in rows:
        for e in row["stamps"]:
            agg = stamps.setdefault(e["tsa"], {"tsa": e["tsa"], "accredited": e["accredited"]})
            agg["days"] = agg.get("days", 0) + e["days"]
    summary: dict[str, dict[str, int]] = {}
    for v in violations:
        k = summary.setdefault(v["kind"], {"opened": 0, "resolved": 0, "open_at_end": 0})
        opened = dt.datetime.fromisoformat(v["opened_at"])
        resolved = dt.datetime.fromisoformat(v["resolved_at"]) if v["resolved_at"] else None
        k["opened"] += start <= opened < end
        k["resolved"] += resolved is not None and start <= resolved < end
        k["open_at_end"] += resolved is None or resolved >= end
    expected = sum(r["expected_days"] for r in rows)
    sealed = sum(r["sealed_days"] for r in rows)
    from logmaster.archive.seal import stamp_label

    return {
        "format": FORMAT,
        "organisation": settings.compliance.organisation,
        "location": location,
        "month": f"{year:04d}-{month:02d}",
        "period": {"from": first.isoformat(), "to": last.isoformat()},
        "complete": last_day == last,
        "covered_until": last_day.isoformat(),
        "generated_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "timezone": zone.key,
        "generator": {"version": __version__, "node": socket.gethostname()},
        "stamp": stamp_label(settings),
        "totals": {
            "devices": len(rows),
            "expected_days": expected,
            "sealed_days": sealed,
            "coverage": round(sealed / expected, 4) if expected else None,
            "lines": sum(r["lines"] for r in rows),
            "gap_seconds": sum(r["gaps"]["seconds"] for r in rows),
            "violations": len(violations),
        },
        "devices": rows,
        "stamps_by_tsa": sorted(stamps.values(), key=lambda e: e["tsa"]),
        "violations": violations,
        "violation_summary": summary,
        "retention": {
            "default_days": settings.retention.default_days,
            "minimum_days": MIN_RETENTION_DAYS,
            "below_minimum": [r["device"] for r in rows if r["retention"]["below_minimum"]],
        },
    }


# -- writing, signing, stamping ---------------------------------------------------------------


def reports_dir(settings: Settings) -> Path:
    return settings.data_dir / REPORTS_DIR


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o640)
    tmp.replace(path)


@dataclass
class WrittenReport:
    json: Path
    pdf: Path
    stamp_errors: list[str]

    @property
    def files(self) -> list[Path]:
        return [
            p
            for base in (self.json, self.pdf)
            for p in (base, base.with_name(base.name + ".p7s"), base.with_name(base.name + ".tsr"))
            if p.exists()
        ]


def write_report(
    settings: Settings,
    year: int,
    month: int,
    location: str | None = None,
    *,
    out_dir: Path | None = None,
    signer: Signer | None = None,
    stamper: Stamper | None = None,
    now: dt.datetime | None = None,
) -> WrittenReport:
    """Build, render, sign and stamp the report; a failed stamp is queued, never fatal."""
    from logmaster.archive.seal import SealError, read_passphrase
    from logmaster.archive.stamps import stamp_or_queue
    from logmaster.compliance.report_pdf import render_pdf

    report = build_report(settings, year, month, location, now=now)
    pdf = render_pdf(report)
    data = (json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
    if signer is None:
        from logmaster.archive.keys import KeyStore, KeyStoreError

        try:
            signer = KeyStore(settings.data_dir / "keys").signer(read_passphrase(settings))
        except (KeyStoreError, SealError) as exc:
            raise ReportError(f"cannot sign the report: {exc}") from exc
    if stamper is None:
        from logmaster.archive.tsa import TsaError, stamper_from_settings

        try:
            stamper = stamper_from_settings(settings)
        except TsaError as exc:
            raise ReportError(f"cannot time-stamp the report: {exc}") from exc
    folder = out_dir or reports_dir(settings) / f"{year:04d}-{month:02d}"
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    stem = report_stem(year, month, location)
    written = WrittenReport(folder / f"{stem}.json", folder / f"{stem}.pdf", [])
    for path, content in ((written.json, data), (written.pdf, pdf)):
        # Signature first, then the file: a file present is always signed.
        _write(path.with_name(path.name + ".p7s"), signer.sign_detached(content))
        _write(path, content)
        error = stamp_or_queue(settings, stamper, path, path.with_name(path.name + ".tsr"))
        if error:
            written.stamp_errors.append(f"{path.name}: {error}")
    return written


def list_reports(settings: Settings) -> list[dict[str, Any]]:
    """Every report on disk, newest month first."""
    root = reports_dir(settings)
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir(), reverse=True):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("compliance-*.json")):
            m = _NAME.match(path.name)
            if m is None:
                continue
            pdf = path.with_suffix(".pdf")
            out.append(
                {
                    "month": f"{m.group(1)}-{m.group(2)}",
                    "location": m.group(3),
                    "name": path.stem,
                    "folder": folder.name,
                    "files": sorted(
                        p.name for p in folder.glob(f"{path.stem}.*") if not p.name.endswith(".tmp")
                    ),
                    "stamped": path.with_name(path.name + ".tsr").exists()
                    and pdf.with_name(pdf.name + ".tsr").exists(),
                    "created_at": dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat(
                        timespec="seconds"
                    ),
                }
            )
    return out


def report_file(settings: Settings, month: str, name: str) -> Path:
    """A report file by month folder and file name; ValueError for anything else."""
    if not re.fullmatch(r"\d{4}-\d{2}", month):
        raise ValueError("month must be YYYY-MM")
    ok = re.fullmatch(
        r"compliance-\d{4}-\d{2}(?:-[a-z0-9][a-z0-9._-]*)?\.(?:json|pdf)(?:\.p7s|\.tsr)?", name
    )
    if ok is None or ".." in name:
        raise ValueError(f"{name!r} is not a report file name")
    path = reports_dir(settings) / month / name
    if not path.is_file():
        raise FileNotFoundError(f"no report file {month}/{name}")
    return path
