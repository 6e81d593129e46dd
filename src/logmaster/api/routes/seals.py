"""Seals and their verification through the API (``archive/seal.py``, ``archive/verdict.py``).

- ``GET /seals``: per permitted device and day, the seal state (sealed / stamp_pending /
  unsealed / silence) with the TSA the manifest names and whether it is accredited.
- ``GET /verify``: the verdicts of ``verdict.verify_days`` (OK / FAIL with named reasons /
  PENDING / UNSEALED), like ``logmaster verify``; recorded in the compliance status too.
- ``POST /seals`` (seal a date now, one device or all) and ``POST /seals/retry-stamps``: admin
  only, audited.

Reading needs the role action ``view_compliance`` and shows only devices of the caller's
``DeviceScope("view")`` (``view_compliance`` is a role action, not a device action, so the
device scope is the one of ``view``, as in ``compliance.py``); a device outside it is 404.

Verification reads every line of every day in range (a day of 1,000 devices is about a minute
of CPU in ``seal.workers`` processes): it runs in a worker thread, one verification per API
process at a time (``VERIFY_LIMITER``; others wait without holding a thread), so the event
loop keeps serving other requests meanwhile. Sealing runs one at a time per process too.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from logmaster.api.audit import FAILED, OK
from logmaster.api.deps import AuditLog, DeviceScope, Principal, device_scope, require, settings_of
from logmaster.api.forward import elsewhere, holder_of_device
from logmaster.api.logdata import logdata_of
from logmaster.api.problems import (
    PROBLEM_RESPONSES,
    ProblemError,
    bad_request,
    conflict,
    forbidden,
    not_found,
)
from logmaster.archive import manifest as mf
from logmaster.archive import seal as sealing
from logmaster.archive import stamps
from logmaster.archive.seal_status import seal_status
from logmaster.archive.verdict import DayVerdict, device_days, verify_days
from logmaster.config import Settings

router = APIRouter(tags=["seals"], responses=PROBLEM_RESPONSES)

MAX_DAYS = 800  # two years and some, as the compliance calendar
MAX_DEVICE_DAYS = 200_000  # one /seals answer: about 30 days of 1,000 devices x 6
Viewer = Annotated[Principal, require("view_compliance")]
Scope = Annotated[DeviceScope, device_scope("view")]
SettingsDep = Annotated[Settings, Depends(settings_of)]
FromQ = Annotated[dt.date | None, Query(alias="from", description="First day (default to-30).")]
ToQ = Annotated[dt.date | None, Query(description="Last day (default today).")]
DeviceQ = Annotated[str | None, Query(max_length=64, description="Only this device.")]

VERIFY_LIMITER = anyio.CapacityLimiter(1)
_SEAL_LOCK = threading.Lock()

STATES = {
    "sealed": ("sealed", "mühürlendi"),
    "stamp_pending": ("stamp pending", "zaman damgası bekliyor"),
    "unsealed": ("unsealed", "mühürsüz"),
    "silence": ("declared silence", "sessiz gün (beyan edildi)"),
}


# -- models --------------------------------------------------------------------------------


class SealPartOut(BaseModel):
    part: int = Field(description="0: the day file; 1, 2 ...: supplements.")
    state: str = Field(description="open | sealing | sealed | stamp_pending")


class SealDayOut(BaseModel):
    """The seal state of one device-day."""

    day: dt.date = Field(description="The device's local day.")
    state: str = Field(description="sealed | stamp_pending | unsealed | silence")
    label: str = Field(description="The state in English / Turkish, for display.")
    tsa: str | None = Field(
        description="The TSA the (first) manifest names ('builtin': the built-in TSA)."
    )
    accredited: bool | None = Field(description="Whether that TSA is accredited.")
    tsa_label: str | None = Field(
        description="'accredited TSA' or 'not from an accredited TSA', English / Turkish."
    )
    parts: list[SealPartOut]


class DeviceSealsOut(BaseModel):
    device: str
    days: list[SealDayOut]


class SealsOut(BaseModel):
    from_: dt.date = Field(alias="from")
    to: dt.date
    devices: list[DeviceSealsOut]


class FindingOut(BaseModel):
    code: str = Field(description="The reason, e.g. line_changed, day_removed, stamp_invalid.")
    message: str
    part: int = Field(description="0: the day file; 1, 2 ...: supplements.")
    line: int | None = Field(description="The first line concerned, when known.")


class VerdictOut(BaseModel):
    """The verdict of one device-day."""

    device: str
    day: dt.date
    verdict: str = Field(description="OK | FAIL | PENDING | UNSEALED")
    reasons: list[FindingOut] = Field(description="Why it failed (empty unless FAIL).")
    notes: list[str] = Field(description="Pending stamps, purged predecessors and the like.")
    parts: int
    lines: int
    declared_silence: bool


class VerifyOut(BaseModel):
    from_: dt.date = Field(alias="from")
    to: dt.date
    ok: bool = Field(description="True when every device-day is OK (the CLI's exit code 0).")
    counts: dict[str, int] = Field(description="Device-days per verdict.")
    days: list[VerdictOut]


class SealIn(BaseModel):
    date: dt.date = Field(description="The device-local day to seal (must be over).")
    device: str | None = Field(default=None, max_length=64, description="Null: every device.")


class SealResultOut(BaseModel):
    device: str
    day: dt.date
    part: int
    state: str = Field(description="sealed | stamp_pending | silence | not_over | error")
    message: str


class SealRunOut(BaseModel):
    results: list[SealResultOut]


class RetryOut(BaseModel):
    stamped: int = Field(description="Queued stamps obtained now.")
    pending: int = Field(description="Stamps still queued (the TSA failed again).")


# -- helpers -------------------------------------------------------------------------------


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


def _devices(
    settings: Settings, scope: DeviceScope, principal: Principal, device: str | None
) -> list[str]:
    """The devices asked for, within the caller's scope (404 for one outside it)."""
    in_archive = set(sealing.archive_devices(settings.archive_dir))
    # An admin also sees archive folders of devices no longer in the registry.
    allowed = set(scope.slugs) | (in_archive if principal.is_admin else set())
    if device is not None:
        if device not in allowed:
            raise not_found(f"device {device}", f"{device} cihazı")
        return [device]
    return sorted(allowed & in_archive)


def _elsewhere(request: Request, device: str) -> Response | None:
    """The answer of the node holding ``device`` when that is another node (several servers)."""
    data = logdata_of(request.app)
    return elsewhere(request, data, holder_of_device(data, device))


def _admin(principal: Principal, what: str, what_tr: str) -> None:
    if not principal.is_admin:
        raise forbidden(f"Only an administrator {what}.", f"{what_tr} yalnızca yönetici yapabilir.")


def _seal_day(settings: Settings, device: str, day: dt.date) -> SealDayOut:
    status = seal_status(settings.archive_dir, device, day)
    tsa: str | None = None
    accredited: bool | None = None
    for part in mf.parts(settings.archive_dir, device, day):
        try:
            stamp = mf.load(part.manifest)[1].get("stamp") or {}
        except (OSError, ValueError):
            continue
        tsa, accredited = stamp.get("tsa"), stamp.get("accredited")
        break
    en, tr = STATES.get(status.state, (status.state, status.state))
    tsa_label = None
    if tsa is not None:
        tsa_label = (
            "accredited TSA / akredite zaman damgası sağlayıcısı"
            if accredited
            else "not from an accredited TSA / akredite olmayan zaman damgası"
        )
    return SealDayOut(
        day=day,
        state=status.state,
        label=f"{en} / {tr}",
        tsa=tsa,
        accredited=accredited,
        tsa_label=tsa_label,
        parts=[SealPartOut(part=p.part, state=p.state) for p in status.parts],
    )


def _verdict(v: DayVerdict) -> VerdictOut:
    return VerdictOut(
        device=v.device,
        day=v.day,
        verdict=v.verdict,
        reasons=[
            FindingOut(code=r.code, message=r.message, part=r.part, line=r.line) for r in v.reasons
        ],
        notes=v.notes,
        parts=v.parts,
        lines=v.lines,
        declared_silence=v.declared_silence,
    )


def _verify(request: Request, devices: list[str], first: dt.date, last: dt.date) -> VerifyOut:
    """Runs in a worker thread: verification, recorded in the compliance status."""
    from logmaster.api.routes.compliance import _cache as status_cache

    settings = settings_of(request)
    verdicts = verify_days(settings, None, first, last, devices=devices) if devices else []
    status_cache(request).record_verdicts(verdicts)
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    return VerifyOut.model_validate(
        {
            "from": first,
            "to": last,
            "ok": set(counts) <= {"OK"},
            "counts": counts,
            "days": [_verdict(v) for v in verdicts],
        }
    )


# -- routes --------------------------------------------------------------------------------


@router.get("/seals", response_model=SealsOut, response_model_by_alias=True)
def list_seals(
    request: Request,
    settings: SettingsDep,
    scope: Scope,
    viewer: Viewer,
    log: AuditLog,
    from_: FromQ = None,
    to: ToQ = None,
    device: DeviceQ = None,
) -> SealsOut | Response:
    """Per permitted device, the seal state of each day with files, and its TSA.

    Without ``device``: what this node's archive holds; a ``device`` held by another node
    is answered by that node.
    """
    first, last = _range(from_, to)
    slugs = _devices(settings, scope, viewer, device)
    if device is not None and (other := _elsewhere(request, device)):
        return other
    if len(slugs) * ((last - first).days + 1) > MAX_DEVICE_DAYS:
        raise bad_request(
            f"More than {MAX_DEVICE_DAYS:,} device-days at once: narrow the range or give a "
            "device (the compliance calendar, /compliance/status, serves long ranges).",
            f"Tek seferde en çok {MAX_DEVICE_DAYS:,} cihaz-gün: aralığı daraltın veya bir "
            "cihaz seçin.",
        )
    devices = [
        DeviceSealsOut(
            device=slug,
            days=[
                _seal_day(settings, slug, d)
                for d in device_days(settings.archive_dir, slug, first, last)
            ],
        )
        for slug in slugs
    ]
    log.record("seals.status", device or "*", OK, {"from": str(first), "to": str(last)})
    return SealsOut.model_validate({"from": first, "to": last, "devices": devices})


@router.get("/verify", response_model=VerifyOut, response_model_by_alias=True)
async def verify_seals(
    request: Request,
    settings: SettingsDep,
    scope: Scope,
    viewer: Viewer,
    log: AuditLog,
    from_: FromQ = None,
    to: ToQ = None,
    device: DeviceQ = None,
) -> VerifyOut | Response:
    """Verify the seals of permitted devices: hashes, chains, Merkle roots, signatures, stamps.

    Without ``device``: what this node's archive holds; a ``device`` held by another node
    is verified by that node.

    One verdict per device-day: OK, FAIL (with named reasons), PENDING (stamp awaited) or
    UNSEALED; ``ok`` is true only when every day is OK.
    """
    first, last = _range(from_, to)
    slugs = _devices(settings, scope, viewer, device)
    if device is not None and (
        other := await anyio.to_thread.run_sync(_elsewhere, request, device)
    ):
        return other
    result = await anyio.to_thread.run_sync(
        functools.partial(_verify, request, slugs, first, last), limiter=VERIFY_LIMITER
    )
    details = {"from": str(first), "to": str(last), "devices": len(slugs), **result.counts}
    await anyio.to_thread.run_sync(
        functools.partial(log.record, "seals.verify", device or "*", OK, details)
    )
    return result


@router.post("/seals", response_model=SealRunOut, status_code=200)
def seal_now(body: SealIn, settings: SettingsDep, viewer: Viewer, log: AuditLog) -> SealRunOut:
    """Seal a date now, for one device or every device (admin; audited).

    Parts already sealed are left alone; a failed stamp is queued (state stamp_pending).
    """
    from logmaster.archive.tsa import TsaError

    _admin(viewer, "seals days on demand", "İsteğe bağlı mühürlemeyi")
    target = body.device or "*"
    details: dict[str, object] = {"date": body.date.isoformat()}
    if not _SEAL_LOCK.acquire(blocking=False):
        raise conflict(
            "A seal run started through the API is still running; try again when it ends.",
            "API üzerinden başlatılan bir mühürleme sürüyor; bittiğinde yeniden deneyin.",
        )
    try:
        results = sealing.SealRun(settings).seal_day(body.date, body.device)
    except (sealing.SealError, TsaError) as exc:
        log.record("seal.run", target, FAILED, {**details, "error": str(exc)})
        raise ProblemError(
            422, "seal-refused", str(exc), f"Mühürlenemedi: {exc}", title="Seal refused"
        ) from None
    finally:
        _SEAL_LOCK.release()
    counts: dict[str, int] = {}
    for r in results:
        counts[r.state] = counts.get(r.state, 0) + 1
    log.record("seal.run", target, OK, {**details, **counts})
    return SealRunOut(
        results=[
            SealResultOut(device=r.device, day=r.day, part=r.part, state=r.state, message=r.message)
            for r in results
        ]
    )


@router.post("/seals/retry-stamps", response_model=RetryOut)
def retry_stamps(settings: SettingsDep, viewer: Viewer, log: AuditLog) -> RetryOut:
    """Try every queued stamp now, whatever its back-off (admin; audited)."""
    from logmaster.archive.tsa import TsaError

    _admin(viewer, "retries stamps", "Zaman damgası yeniden denemesini")
    try:
        stamped, pending = stamps.retry_stamps(settings, force=True)
    except TsaError as exc:
        log.record("seal.retry_stamps", "*", FAILED, {"error": str(exc)})
        raise ProblemError(
            422, "stamp-refused", str(exc), f"Zaman damgası alınamadı: {exc}", title="No TSA"
        ) from None
    log.record("seal.retry_stamps", "*", OK, {"stamped": stamped, "pending": pending})
    return RetryOut(stamped=stamped, pending=pending)
