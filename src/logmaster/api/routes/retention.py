"""Retention and legal holds (archive/retention.py): view with ``view_compliance``, change as admin.

Reading is scoped like every device route: a caller other than an admin sees the retention,
due days and legal holds of the devices in their ``view`` scope only. A hold on every device
(``device`` null) is shown to every reader: it holds their devices' days too, and it names no
device.

Every change is audited in the same transaction as the change itself. There is no route that
deletes a day or purges: purges run in the server's schedule or ``logmaster retention purge``,
and only past retention; a route to delete inside retention does not exist, for anyone.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from logmaster.api.deps import (
    DbSession,
    DeviceScope,
    Principal,
    RowId,
    SourceIp,
    device_scope,
    require,
    settings_of,
)
from logmaster.api.models import as_utc
from logmaster.api.problems import PROBLEM_RESPONSES, ProblemError, forbidden, not_found
from logmaster.archive import retention as rt
from logmaster.archive.seal import archive_devices
from logmaster.config import Settings
from logmaster.db import Device

router = APIRouter(prefix="/retention", tags=["retention"], responses=PROBLEM_RESPONSES)

Slug = Annotated[str, Path(max_length=64, description="Device slug.")]
SettingsDep = Annotated[Settings, Depends(settings_of)]
Scope = Annotated[DeviceScope, device_scope("view")]


class PolicyOut(BaseModel):
    """A device's retention."""

    device: str
    days: int = Field(description="Days each device-day is kept after it ended.")
    source: str = Field(description="'default' (retention.default_days) or 'device'.")
    allow_short_retention: bool = Field(
        description="True when the retention is below 730 days, which was allowed explicitly."
    )
    set_by: str | None = None
    set_at: dt.datetime | None = None
    reason: str = ""


class PolicyIn(BaseModel):
    days: int = Field(ge=1, le=36500, description="Days kept after each day ended.")
    allow_short_retention: bool = Field(
        default=False, description="Needed (explicitly) for fewer than 730 days."
    )
    reason: str = Field(default="", max_length=2000, description="Required below 730 days.")


class HoldIn(BaseModel):
    device: str | None = Field(
        default=None, max_length=64, description="Device slug; null: every device."
    )
    from_: dt.date = Field(alias="from", description="First day held.")
    to: dt.date = Field(description="Last day held.")
    reason: str = Field(min_length=1, max_length=2000)
    case_ref: str = Field(default="", max_length=200)


class ReleaseIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class HoldOut(BaseModel):
    id: int
    device: str | None
    first_day: dt.date
    last_day: dt.date
    reason: str
    case_ref: str
    created_by: str
    created_at: dt.datetime
    released_by: str | None
    released_at: dt.datetime | None
    release_reason: str | None


class DueOut(BaseModel):
    device: str
    day: dt.date
    state: str = Field(description="purge (due), held (legal hold) or unsealed.")
    why: str


def _policy(p: rt.DevicePolicy) -> PolicyOut:
    return PolicyOut(
        device=p.device,
        days=p.days,
        source=p.source,
        allow_short_retention=p.allow_short_retention,
        set_by=p.set_by,
        set_at=as_utc(p.set_at),
        reason=p.reason,
    )


def _hold(h: rt.LegalHold) -> HoldOut:
    out = HoldOut.model_validate(h, from_attributes=True)
    # SQLite gives naive datetimes back (stored as UTC); the schema promises an offset.
    return out.model_copy(
        update={"created_at": as_utc(h.created_at), "released_at": as_utc(h.released_at)}
    )


def _sees(principal: Principal, scope: DeviceScope, device: str | None) -> bool:
    """Whether the caller may see an item about ``device`` (None: every device)."""
    return principal.is_admin or device is None or scope.allows(device)


def _admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise forbidden(
            "Only an administrator changes retention and legal holds.",
            "Saklama süresini ve yasal saklamaları yalnızca yönetici değiştirebilir.",
        )


def _refused(exc: rt.RetentionError) -> ProblemError:
    return ProblemError(
        422, "retention-refused", str(exc), f"Reddedildi: {exc}", title="Refused by retention"
    )


@router.get("", response_model=list[PolicyOut])
def list_retention(
    session: DbSession,
    settings: SettingsDep,
    viewer: Annotated[Principal, require("view_compliance")],
    scope: Scope,
) -> list[PolicyOut]:
    """Each permitted device's retention; ``allow_short_retention`` flags those below 730 days."""
    devices = archive_devices(settings.archive_dir)
    devices += list(session.scalars(sa.select(Device.slug)))
    return [
        _policy(p)
        for p in rt.overview(session, settings, devices)
        if _sees(viewer, scope, p.device)
    ]


@router.get("/due", response_model=list[DueOut])
def list_due(
    session: DbSession,
    settings: SettingsDep,
    viewer: Annotated[Principal, require("view_compliance")],
    scope: Scope,
) -> list[DueOut]:
    """Permitted device-days past retention: due for purge, held, or unsealed."""
    return [
        DueOut(device=d.device, day=d.day, state=d.state, why=d.why)
        for d in rt.plan(settings, session)
        if _sees(viewer, scope, d.device)
    ]


@router.put("/devices/{slug}", response_model=PolicyOut)
def set_retention(
    slug: Slug,
    body: PolicyIn,
    session: DbSession,
    settings: SettingsDep,
    principal: Annotated[Principal, require("view_compliance")],
    ip: SourceIp,
) -> PolicyOut:
    """Set a device's retention (admin; audited). Below 730 days needs allow_short_retention."""
    _admin(principal)
    try:
        p = rt.set_retention(
            session, settings, slug, body.days, actor=principal.username,
            allow_short_retention=body.allow_short_retention, reason=body.reason, source_ip=ip,
        )  # fmt: skip
    except rt.RetentionError as exc:
        raise _refused(exc) from None
    return _policy(p)


@router.get("/holds", response_model=list[HoldOut])
def list_holds(
    session: DbSession,
    viewer: Annotated[Principal, require("view_compliance")],
    scope: Scope,
    include_released: bool = False,
) -> list[HoldOut]:
    """Legal holds of permitted devices and of every device (active, or all with
    include_released)."""
    return [
        _hold(h) for h in rt.list_holds(session, include_released) if _sees(viewer, scope, h.device)
    ]


@router.post("/holds", response_model=HoldOut, status_code=201)
def add_hold(
    body: HoldIn,
    session: DbSession,
    principal: Annotated[Principal, require("view_compliance")],
    ip: SourceIp,
) -> HoldOut:
    """Place a legal hold on a device (or every device) and a day range (admin; audited)."""
    _admin(principal)
    try:
        hold = rt.add_hold(
            session, body.device, body.from_, body.to, reason=body.reason,
            case_ref=body.case_ref, actor=principal.username, source_ip=ip,
        )  # fmt: skip
    except rt.RetentionError as exc:
        raise _refused(exc) from None
    return _hold(hold)


@router.post("/holds/{hold_id}/release", response_model=HoldOut)
def release_hold(
    hold_id: RowId,
    body: ReleaseIn,
    session: DbSession,
    principal: Annotated[Principal, require("view_compliance")],
    ip: SourceIp,
) -> HoldOut:
    """Release a legal hold (admin; audited); it stays listed with include_released."""
    _admin(principal)
    try:
        hold = rt.release_hold(
            session, hold_id, reason=body.reason, actor=principal.username, source_ip=ip
        )
    except rt.RetentionError as exc:
        if "no legal hold" in str(exc):
            raise not_found(f"legal hold {hold_id}", f"{hold_id} numaralı yasal saklama") from None
        raise _refused(exc) from None
    return _hold(hold)
