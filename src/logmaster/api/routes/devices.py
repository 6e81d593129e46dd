"""Devices: list with status, edit, approve / reject pending, retire. Each change is audited.

A caller sees the devices of their ``view`` or ``manage`` scope; any other device is 404 (as if
it did not exist). Changing one needs ``manage`` on it (a visible device they may not manage is
403). The slug never changes: it names the archive folder. Nothing here deletes a device or its
archive.

Status: ``last_seen`` is the collector's (written every 10 s); ``messages_per_s`` counts the
device's indexed events of the last minute; a device is ``silent`` when nothing arrived for
:data:`SILENT_AFTER` (``silent_since`` = its last line, or its creation if it never sent).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from logmaster.api.audit import OK, record
from logmaster.api.deps import CurrentPrincipal, DbSession, DeviceScope, SourceIp, device_scope
from logmaster.api.logdata import LogData, LogDataDep, rfc3339, zone_of
from logmaster.api.models import DEVICE_LOCATION, DeviceGroup, DeviceGroupMember, Location, as_utc
from logmaster.api.problems import (
    PROBLEM_RESPONSES,
    bad_request,
    conflict,
    forbidden,
    not_found,
)
from logmaster.db import Device
from logmaster.index.base import SearchRequest

router = APIRouter(prefix="/devices", tags=["devices"], responses=PROBLEM_RESPONSES)

SILENT_AFTER = dt.timedelta(minutes=5)
RATE_WINDOW = dt.timedelta(seconds=60)

Slug = Annotated[str, Path(max_length=64, description="Device slug (its archive folder name).")]
ViewScope = Annotated[DeviceScope, device_scope("view")]
ManageScope = Annotated[DeviceScope, device_scope("manage")]
Status = Literal["pending", "approved", "rejected", "retired"]


class GroupRef(BaseModel):
    id: int
    name: str


class DeviceOut(BaseModel):
    """A device and its status."""

    id: int
    slug: str = Field(description="Archive folder name; never changes.")
    name: str
    status: Status
    timezone: str = Field(description="IANA timezone; its day files follow its local day.")
    location: str = Field(description="Location name ('' for none).")
    location_id: int | None
    groups: list[GroupRef]
    format: str | None = Field(description="Pinned parser, or null for automatic detection.")
    hostname: str | None = Field(description="Syslog hostname that tells it apart on a relay.")
    sources: list[str] = Field(description="Sender addresses / networks (CIDR).")
    created_at: str
    last_seen: str | None = Field(description="Last line received (RFC 3339, device zone).")
    messages_per_s: float = Field(description="Indexed events per second over the last minute.")
    silent: bool = Field(description="Nothing received for 5 minutes.")
    silent_since: str | None = Field(description="When the silence began, if silent.")
    can_manage: bool = Field(description="Whether the caller may change this device.")
    node: str | None = Field(
        default=None,
        description="The node whose archive holds this device (several servers); null until a "
        "collector received it.",
    )


class DeviceList(BaseModel):
    devices: list[DeviceOut]


class DeviceUpdate(BaseModel):
    """Fields to change; omitted ones stay. ``location_id``/``format`` null clears them."""

    model_config = {"extra": "forbid"}

    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    location_id: int | None = Field(default=None, ge=1)
    group_ids: list[int] | None = Field(default=None, max_length=200)
    format: str | None = Field(default=None, max_length=32)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _rates(data: LogData, slugs: list[str]) -> dict[str, float]:
    if not slugs:
        return {}
    end = _now()
    counts = data.index.get().device_counts(
        SearchRequest(None, end - RATE_WINDOW, end, 1, None, frozenset(slugs))
    )
    return {d: n / RATE_WINDOW.total_seconds() for d, n in counts.items()}


def _load(session: Any, ids: set[int] | None) -> list[tuple[Device, int | None, str]]:
    query = sa.select(Device).order_by(Device.slug)
    if ids is not None:
        query = query.where(Device.id.in_(list(ids)))
    devices = list(session.scalars(query))
    loc_ids = dict(
        session.execute(
            sa.select(DEVICE_LOCATION.c.id, DEVICE_LOCATION.c.location_id).where(
                DEVICE_LOCATION.c.id.in_([d.id for d in devices])
            )
        ).all()
    )
    names = dict(session.execute(sa.select(Location.id, Location.name)).all())
    out = []
    for d in devices:
        loc_id = loc_ids.get(d.id)
        out.append((d, loc_id, names.get(loc_id, d.location or "") if loc_id else d.location))
    return out


def _groups(session: Any, ids: list[int]) -> dict[int, list[GroupRef]]:
    rows = session.execute(
        sa.select(DeviceGroupMember.device_id, DeviceGroup.id, DeviceGroup.name)
        .join(DeviceGroup, DeviceGroup.id == DeviceGroupMember.group_id)
        .where(DeviceGroupMember.device_id.in_(ids))
        .order_by(DeviceGroup.name)
    ).all()
    out: dict[int, list[GroupRef]] = {}
    for device_id, gid, name in rows:
        out.setdefault(device_id, []).append(GroupRef(id=gid, name=name))
    return out


def _out(
    d: Device,
    location_id: int | None,
    location: str,
    groups: list[GroupRef],
    rate: float,
    can_manage: bool,
) -> DeviceOut:
    zone = zone_of(d.timezone, "UTC")
    seen = as_utc(d.last_seen_at)
    created = as_utc(d.created_at) or _now()
    silent = seen is None or _now() - seen > SILENT_AFTER
    return DeviceOut(
        id=d.id,
        slug=d.slug,
        name=d.name,
        status=d.status,
        timezone=d.timezone,
        location=location or "",
        location_id=location_id,
        groups=groups,
        format=d.format,
        hostname=d.hostname,
        node=d.node,
        sources=sorted(s.cidr for s in d.sources),
        created_at=rfc3339(created, zone),
        last_seen=rfc3339(seen, zone) if seen else None,
        messages_per_s=round(rate, 3),
        silent=silent,
        silent_since=rfc3339(seen or created, zone) if silent else None,
        can_manage=can_manage,
    )


def _visible(view: DeviceScope, manage: DeviceScope) -> set[int]:
    return set(view.device_ids | manage.device_ids)


def _one(
    session: Any, data: LogData, slug: str, view: DeviceScope, manage: DeviceScope
) -> DeviceOut:
    found = _load(session, _visible(view, manage))
    for d, loc_id, loc in found:
        if d.slug == slug:
            groups = _groups(session, [d.id]).get(d.id, [])
            rate = _rates(data, [slug]).get(slug, 0.0)
            return _out(d, loc_id, loc, groups, rate, manage.allows(slug))
    raise not_found(f"device {slug}", f"{slug} cihazı")


@router.get("", response_model=DeviceList)
def list_devices(
    session: DbSession, data: LogDataDep, view: ViewScope, manage: ManageScope
) -> DeviceList:
    """The devices the caller may view or manage, with their status."""
    found = _load(session, _visible(view, manage))
    groups = _groups(session, [d.id for d, _, _ in found])
    rates = _rates(data, [d.slug for d, _, _ in found if view.allows(d.slug)])
    return DeviceList(
        devices=[
            _out(d, lid, loc, groups.get(d.id, []), rates.get(d.slug, 0.0), manage.allows(d.slug))
            for d, lid, loc in found
        ]
    )


@router.get("/{slug}", response_model=DeviceOut)
def get_device(
    slug: Slug, session: DbSession, data: LogDataDep, view: ViewScope, manage: ManageScope
) -> DeviceOut:
    """One device and its status."""
    return _one(session, data, slug, view, manage)


def _managed(session: Any, slug: str, view: DeviceScope, manage: DeviceScope) -> Device:
    device: Device | None = session.scalar(sa.select(Device).where(Device.slug == slug))
    if device is None or device.id not in _visible(view, manage):
        raise not_found(f"device {slug}", f"{slug} cihazı")
    if not manage.allows(slug):
        raise forbidden(
            f"You may view device {slug} but not change it (needs the manage permission on it).",
            f"{slug} cihazını görebilirsiniz ama değiştiremezsiniz (yönetme izni gerekir).",
        )
    return device


@router.patch("/{slug}", response_model=DeviceOut)
def update_device(
    slug: Slug,
    change: DeviceUpdate,
    session: DbSession,
    data: LogDataDep,
    view: ViewScope,
    manage: ManageScope,
    principal: CurrentPrincipal,
    ip: SourceIp,
) -> DeviceOut:
    """Change a device's name, timezone, location, groups or pinned format."""
    device = _managed(session, slug, view, manage)
    given = change.model_fields_set
    details: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if "name" in given and change.name is not None:
        values["name"] = details["name"] = change.name.strip()
    if "timezone" in given and change.timezone is not None:
        try:
            ZoneInfo(change.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise bad_request(
                f"Unknown timezone {change.timezone!r}: use an IANA name such as Europe/Istanbul.",
                f"Bilinmeyen saat dilimi {change.timezone!r}: Europe/Istanbul gibi bir IANA "
                "adı kullanın.",
            ) from None
        values["timezone"] = details["timezone"] = change.timezone
    if "format" in given:
        from logmaster.parsers import BY_NAME

        if change.format is not None and change.format not in BY_NAME:
            raise bad_request(
                f"Unknown format {change.format!r}; known: {', '.join(sorted(BY_NAME))}.",
                f"Bilinmeyen biçim {change.format!r}; bilinenler: {', '.join(sorted(BY_NAME))}.",
            )
        values["format"] = details["format"] = change.format
    if "location_id" in given:
        name = ""
        if change.location_id is not None:
            loc = session.get(Location, change.location_id)
            if loc is None:
                raise bad_request(
                    f"No location {change.location_id}.", f"{change.location_id} konumu yok."
                )
            name = loc.name
        values["location"] = name
        details["location"] = name
    if "group_ids" in given and change.group_ids is not None:
        wanted = set(change.group_ids)
        known = set(session.scalars(sa.select(DeviceGroup.id).where(DeviceGroup.id.in_(wanted))))
        if wanted - known:
            missing = ", ".join(str(i) for i in sorted(wanted - known))
            raise bad_request(f"No device group {missing}.", f"{missing} cihaz grubu yok.")
        session.execute(
            sa.delete(DeviceGroupMember).where(DeviceGroupMember.device_id == device.id)
        )
        for gid in sorted(wanted):
            session.add(DeviceGroupMember(group_id=gid, device_id=device.id))
        details["group_ids"] = sorted(wanted)
    if values:
        values["updated_at"] = _now()  # the collector reloads its registry when this moves
        session.execute(sa.update(Device).where(Device.id == device.id).values(**values))
    if "location_id" in given:
        session.execute(
            sa.update(DEVICE_LOCATION)
            .where(DEVICE_LOCATION.c.id == device.id)
            .values(location_id=change.location_id)
        )
    record(
        session,
        actor=principal.username,
        source_ip=ip,
        action="device.update",
        target=slug,
        result=OK,
        details=details,
    )
    session.commit()
    session.expire_all()
    return _one(session, data, slug, view, manage)


# From which statuses each operation may start; anything else is 409 with the reason.
TRANSITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "approve": ("approved", ("pending", "rejected", "retired")),
    "reject": ("rejected", ("pending",)),
    "retire": ("retired", ("approved",)),
}
_TR = {"approve": "onaylanamaz", "reject": "reddedilemez", "retire": "emekliye ayrılamaz"}


def _transition(
    operation: str,
    slug: str,
    session: Any,
    data: LogData,
    view: DeviceScope,
    manage: DeviceScope,
    principal: Any,
    ip: str,
) -> DeviceOut:
    device = _managed(session, slug, view, manage)
    target, sources = TRANSITIONS[operation]
    if device.status not in sources:
        raise conflict(
            f"Device {slug} is {device.status}; only a device that is "
            f"{' or '.join(sources)} can be {operation}d.",
            f"{slug} cihazı şu an {device.status}; {_TR[operation]} "
            f"(gereken durum: {' / '.join(sources)}).",
        )
    before = device.status
    session.execute(
        sa.update(Device).where(Device.id == device.id).values(status=target, updated_at=_now())
    )
    record(
        session,
        actor=principal.username,
        source_ip=ip,
        action=f"device.{operation}",
        target=slug,
        result=OK,
        details={"from": before, "to": target},
    )
    session.commit()
    session.expire_all()
    return _one(session, data, slug, view, manage)


@router.post("/{slug}/approve", response_model=DeviceOut)
def approve_device(
    slug: Slug,
    session: DbSession,
    data: LogDataDep,
    view: ViewScope,
    manage: ManageScope,
    principal: CurrentPrincipal,
    ip: SourceIp,
) -> DeviceOut:
    """Approve a pending (or rejected, or retired) device: its lines are archived as its own."""
    return _transition("approve", slug, session, data, view, manage, principal, ip)


@router.post("/{slug}/reject", response_model=DeviceOut)
def reject_device(
    slug: Slug,
    session: DbSession,
    data: LogDataDep,
    view: ViewScope,
    manage: ManageScope,
    principal: CurrentPrincipal,
    ip: SourceIp,
) -> DeviceOut:
    """Reject a pending device: its lines are counted, no longer archived."""
    return _transition("reject", slug, session, data, view, manage, principal, ip)


@router.post("/{slug}/retire", response_model=DeviceOut)
def retire_device(
    slug: Slug,
    session: DbSession,
    data: LogDataDep,
    view: ViewScope,
    manage: ManageScope,
    principal: CurrentPrincipal,
    ip: SourceIp,
) -> DeviceOut:
    """Retire an approved device; late lines are still archived, its archive stays."""
    return _transition("retire", slug, session, data, view, manage, principal, ip)
