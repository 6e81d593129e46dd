"""Compliance: status per device-day (calendar heatmap), violations, monthly reports.

Every route needs the role action ``view_compliance`` and shows only devices of the caller's
``DeviceScope("view")`` (``view_compliance`` is a role action, not a device action, so the
device scope is the one of ``view``): a device outside it is 404, as if it did not exist.
Violations without a device (archive disk) are shown to everyone with ``view_compliance``. A
report is listed and served only when every device it covers is in the caller's scope (an
organisation-wide report: admins and users granted every device). Making a report takes an
admin. Every call is audited (``compliance.*``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from logmaster.api.audit import FAILED, OK
from logmaster.api.deps import (
    AuditLog,
    DbSession,
    DeviceScope,
    Principal,
    device_scope,
    require,
    settings_of,
)
from logmaster.api.problems import PROBLEM_RESPONSES, bad_request, forbidden, not_found
from logmaster.compliance import reports
from logmaster.compliance.status import StatusCache
from logmaster.compliance.violations import KINDS, list_violations
from logmaster.config import Settings

router = APIRouter(prefix="/compliance", tags=["compliance"], responses=PROBLEM_RESPONSES)

MAX_DAYS = 800  # a two-year calendar and some
Viewer = Annotated[Principal, require("view_compliance")]
Scope = Annotated[DeviceScope, device_scope("view")]
SettingsDep = Annotated[Settings, Depends(settings_of)]
MEDIA = {
    ".pdf": "application/pdf",
    ".json": "application/json",
    ".p7s": "application/pkcs7-signature",
    ".tsr": "application/timestamp-reply",
}


def _cache(request: Request) -> StatusCache:
    # One cache per API process: its SQLite file is shared with the CLI and other processes.
    cache: StatusCache | None = getattr(request.app.state, "compliance_cache", None)
    if cache is None:
        cache = StatusCache(settings_of(request))
        request.app.state.compliance_cache = cache
    return cache


def _range(first: dt.date | None, last: dt.date | None) -> tuple[dt.date, dt.date]:
    last = last or dt.date.today()
    first = first or last - dt.timedelta(days=30)
    if first > last:
        raise bad_request("'from' is after 'to'; swap them.", "'from', 'to' tarihinden sonra.")
    if (last - first).days >= MAX_DAYS:
        raise bad_request(
            f"At most {MAX_DAYS} days at once.", f"Tek seferde en çok {MAX_DAYS} gün."
        )
    return first, last


class DayCell(BaseModel):
    """One device-day of the calendar (days not listed have no file: no_data)."""

    day: dt.date
    state: str = Field(description="open | stamp_pending | sealed | silence")
    lines: int
    tsa: str | None = Field(description="TSA named by the manifest ('builtin': built-in).")
    accredited: bool | None
    verified: str | None = Field(description="Last verification: OK | FAIL | PENDING | None.")
    gap_seconds: int = Field(description="Silence declared in the manifest, seconds.")
    parse_failure_rate: float | None


class DeviceCalendar(BaseModel):
    device: str
    days: list[DayCell]


class Calendar(BaseModel):
    from_: dt.date = Field(alias="from")
    to: dt.date
    devices: list[DeviceCalendar]


@router.get("/status", response_model=Calendar)
def compliance_calendar(
    request: Request,
    scope: Scope,
    _viewer: Viewer,
    log: AuditLog,
    from_: Annotated[dt.date | None, Query(alias="from", description="First day.")] = None,
    to: Annotated[dt.date | None, Query(description="Last day (default today).")] = None,
    device: Annotated[str | None, Query(max_length=64, description="Only this device.")] = None,
) -> Response:
    """Per permitted device, its days with files: state, lines, stamp, verification (heatmap).

    Days not listed have no file at all (no_data). Up to 800 days; two years of 1,000 devices
    is one answer, served from the status cache.
    """
    first, last = _range(from_, to)
    if device is not None and not scope.allows(device):
        raise not_found(f"device {device}", f"{device} cihazı")
    slugs = [device] if device else sorted(scope.slugs)
    devices = [{"device": d, "days": c} for d, c in _cache(request).cells(first, last, slugs)]
    log.record("compliance.status", device or "*", OK, {"from": str(first), "to": str(last)})
    # Built by hand and sent with orjson: validating 730,000 cells would cost seconds.
    body = orjson.dumps({"from": first, "to": last, "devices": devices})
    return Response(body, media_type="application/json")


@router.get("/status/{slug}")
def compliance_device_days(
    request: Request,
    slug: Annotated[str, Path(max_length=64, description="Device slug.")],
    scope: Scope,
    _viewer: Viewer,
    log: AuditLog,
    from_: Annotated[dt.date | None, Query(alias="from", description="First day.")] = None,
    to: Annotated[dt.date | None, Query(description="Last day (default today).")] = None,
) -> list[dict[str, Any]]:
    """Everything known of a permitted device's days: gaps, clock offset, verdict reasons."""
    if not scope.allows(slug):
        raise not_found(f"device {slug}", f"{slug} cihazı")
    first, last = _range(from_, to)
    rows = [s.to_json() for s in _cache(request).statuses(first, last, [slug], fill=True)]
    log.record("compliance.status", slug, OK, {"from": str(first), "to": str(last)})
    return rows


@router.get("/violations")
def list_compliance_violations(
    session: DbSession,
    scope: Scope,
    _viewer: Viewer,
    log: AuditLog,
    open_only: Annotated[bool, Query(alias="open", description="Only open ones.")] = False,
    device: Annotated[str | None, Query(max_length=64, description="Only this device.")] = None,
    kind: Annotated[str | None, Query(description=f"One of {', '.join(KINDS)}.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    """Violations of permitted devices (and device-less ones), newest first, with times."""
    if kind is not None and kind not in KINDS:
        raise bad_request(f"Unknown kind {kind!r}.", f"Bilinmeyen tür {kind!r}.")
    if device is not None and not scope.allows(device):
        raise not_found(f"device {device}", f"{device} cihazı")
    devices = {device} if device else set(scope.slugs)
    rows = list_violations(
        session,
        open_only=open_only,
        devices=devices,
        include_global=device is None,
        kind=kind,
        limit=limit,
    )
    log.record("compliance.violations", device or "*", OK, {"open": open_only, "kind": kind})
    return [v.to_json() for v in rows]


def _covered(settings: Settings, entry: dict[str, Any]) -> set[str]:
    path = reports.reports_dir(settings) / entry["folder"] / f"{entry['name']}.json"
    try:
        return {d["device"] for d in json.loads(path.read_bytes()).get("devices", [])}
    except (OSError, ValueError):
        return {"?unreadable"}  # nobody but an admin sees a report that cannot be read


def _visible(settings: Settings, scope: DeviceScope, principal: Principal) -> list[dict[str, Any]]:
    return [
        e
        for e in reports.list_reports(settings)
        if principal.is_admin or _covered(settings, e) <= scope.slugs
    ]


@router.get("/reports")
def list_compliance_reports(
    settings: SettingsDep, scope: Scope, viewer: Viewer, log: AuditLog
) -> list[dict[str, Any]]:
    """Monthly reports whose devices are all permitted, newest first, with their files."""
    rows = _visible(settings, scope, viewer)
    log.record("compliance.reports", "*", OK, {"count": len(rows)})
    return rows


@router.get("/reports/{name}", response_class=FileResponse)
def download_compliance_report(
    name: Annotated[
        str, Path(max_length=120, description="File name, e.g. compliance-2026-11.pdf")
    ],
    settings: SettingsDep,
    scope: Scope,
    viewer: Viewer,
    log: AuditLog,
) -> FileResponse:
    """One file of a report: .pdf, .json, or their .p7s signature / .tsr timestamp."""
    month = name[len("compliance-") : len("compliance-") + 7]
    stem = name.split(".")[0]
    try:
        path = reports.report_file(settings, month, name)
    except (ValueError, FileNotFoundError):
        raise not_found(f"report file {name}", f"{name} rapor dosyası") from None
    if not any(e["name"] == stem for e in _visible(settings, scope, viewer)):
        raise not_found(f"report file {name}", f"{name} rapor dosyası")
    log.record("compliance.report.download", name, OK, {})
    media = MEDIA.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, filename=name)


class ReportIn(BaseModel):
    month: str = Field(pattern=r"^(19|2[0-9])\d{2}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    location: str | None = Field(default=None, max_length=200, description="Only this location.")


@router.post("/reports", status_code=201)
def create_compliance_report(
    body: ReportIn, settings: SettingsDep, viewer: Viewer, log: AuditLog
) -> dict[str, Any]:
    """Make (or make again) a month's report: JSON + PDF, signed and time-stamped. Admin only."""
    if not viewer.is_admin:
        raise forbidden("Only an admin makes reports.", "Raporu yalnızca yönetici oluşturur.")
    year, month = (int(x) for x in body.month.split("-"))
    target = reports.report_stem(year, month, body.location)
    try:
        written = reports.write_report(settings, year, month, body.location)
    except reports.ReportError as exc:
        log.record("compliance.report.create", target, FAILED, {"error": str(exc)})
        raise bad_request(str(exc), f"Rapor oluşturulamadı: {exc}") from None
    log.record("compliance.report.create", target, OK, {"stamp_errors": written.stamp_errors})
    [entry] = [e for e in reports.list_reports(settings) if e["name"] == written.json.stem]
    return {**entry, "stamp_errors": written.stamp_errors}
