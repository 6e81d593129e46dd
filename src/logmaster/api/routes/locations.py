"""Locations (sites): list, create, rename, delete, and which devices stand at each.

Listing needs a signed-in user; changes need ``manage_users`` (a location decides what location
managers see). Assigning a device sets ``devices.location_id`` and keeps the free-text
``devices.location`` equal to the location's name (attribution joins hops by it).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, Field

from logmaster.api import audit
from logmaster.api.deps import AuditLog, CurrentPrincipal, DbSession, Principal, RowId, require
from logmaster.api.models import DEVICE_LOCATION, Location
from logmaster.api.problems import bad_request, conflict, not_found

router = APIRouter(prefix="/locations", tags=["locations"])
Admin = Annotated[Principal, require("manage_users")]


class LocationOut(BaseModel):
    id: int
    name: str
    description: str
    created_at: dt.datetime


class LocationIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=500)


class LocationUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=500)


class DeviceList(BaseModel):
    devices: list[str] = Field(description="Device slugs.")


def location_out(loc: Location) -> LocationOut:
    return LocationOut(
        id=loc.id, name=loc.name, description=loc.description, created_at=loc.created_at
    )


def load_location(session: DbSession, location_id: int) -> Location:
    loc = session.get(Location, location_id)
    if loc is None:
        raise not_found(f"location {location_id}", f"{location_id} numaralı konum")
    return loc


def device_ids(session: DbSession, slugs: list[str]) -> dict[str, int]:
    """slug -> id for every slug; 400 naming the unknown ones."""
    found = dict(
        session.execute(
            sa.select(DEVICE_LOCATION.c.slug, DEVICE_LOCATION.c.id).where(
                DEVICE_LOCATION.c.slug.in_(slugs)
            )
        ).all()
    )
    missing = sorted(set(slugs) - set(found))
    if missing:
        raise bad_request(
            f"unknown device(s): {', '.join(missing)}",
            f"bilinmeyen cihaz(lar): {', '.join(missing)}",
            kind="unknown-device",
        )
    return found


def set_device_location(session: DbSession, device_id: int, location: Location | None) -> None:
    """Put a device at a location (None: nowhere); both location columns change together."""
    session.execute(
        sa.update(DEVICE_LOCATION)
        .where(DEVICE_LOCATION.c.id == device_id)
        .values(
            location_id=location.id if location else None,
            location=location.name if location else "",
        )
    )


@router.get("")
def list_locations(principal: CurrentPrincipal, session: DbSession) -> list[LocationOut]:
    """Every location."""
    return [location_out(x) for x in session.scalars(sa.select(Location).order_by(Location.name))]


@router.post("", status_code=201)
def create_location(
    body: LocationIn, principal: Admin, session: DbSession, log: AuditLog
) -> LocationOut:
    """Add a location."""
    if session.scalar(sa.select(Location.id).where(Location.name == body.name)) is not None:
        raise conflict(f"location {body.name} already exists", f"{body.name} konumu zaten var")
    loc = Location(name=body.name, description=body.description)
    session.add(loc)
    session.flush()
    log.record(
        "location.create", f"location:{body.name}", audit.OK, body.model_dump(), session=session
    )
    session.commit()
    return location_out(loc)


@router.patch("/{location_id}")
def update_location(
    location_id: RowId, body: LocationUpdate, principal: Admin, session: DbSession, log: AuditLog
) -> LocationOut:
    """Rename or describe a location (its devices follow the new name)."""
    loc = load_location(session, location_id)
    if body.name is not None and body.name != loc.name:
        if session.scalar(sa.select(Location.id).where(Location.name == body.name)) is not None:
            raise conflict(f"location {body.name} already exists", f"{body.name} konumu zaten var")
        session.execute(
            sa.update(DEVICE_LOCATION)
            .where(DEVICE_LOCATION.c.location_id == loc.id)
            .values(location=body.name)
        )
        loc.name = body.name
    if body.description is not None:
        loc.description = body.description
    log.record(
        "location.update",
        f"location:{loc.id}",
        audit.OK,
        body.model_dump(exclude_unset=True),
        session=session,
    )
    session.commit()
    return location_out(loc)


@router.delete("/{location_id}", status_code=204)
def delete_location(
    location_id: RowId, principal: Admin, session: DbSession, log: AuditLog
) -> None:
    """Remove a location; its devices are left without one, its grants go."""
    loc = load_location(session, location_id)
    session.execute(
        sa.update(DEVICE_LOCATION)
        .where(DEVICE_LOCATION.c.location_id == loc.id)
        .values(location_id=None, location="")
    )
    session.delete(loc)
    log.record("location.delete", f"location:{loc.name}", audit.OK, {}, session=session)
    session.commit()


@router.get("/{location_id}/devices")
def list_location_devices(location_id: RowId, principal: Admin, session: DbSession) -> DeviceList:
    """The devices standing at a location."""
    loc = load_location(session, location_id)
    slugs = session.scalars(
        sa.select(DEVICE_LOCATION.c.slug)
        .where(
            sa.or_(
                DEVICE_LOCATION.c.location_id == loc.id,
                sa.and_(
                    DEVICE_LOCATION.c.location_id.is_(None), DEVICE_LOCATION.c.location == loc.name
                ),
            )
        )
        .order_by(DEVICE_LOCATION.c.slug)
    )
    return DeviceList(devices=list(slugs))


@router.post("/{location_id}/devices")
def add_location_devices(
    location_id: RowId, body: DeviceList, principal: Admin, session: DbSession, log: AuditLog
) -> DeviceList:
    """Put devices at this location (moving them from wherever they were)."""
    loc = load_location(session, location_id)
    for device_id in device_ids(session, body.devices).values():
        set_device_location(session, device_id, loc)
    log.record(
        "location.devices",
        f"location:{loc.name}",
        audit.OK,
        {"added": body.devices},
        session=session,
    )
    session.commit()
    return list_location_devices(location_id, principal, session)


@router.delete("/{location_id}/devices/{slug}", status_code=204)
def remove_location_device(
    location_id: RowId, slug: str, principal: Admin, session: DbSession, log: AuditLog
) -> None:
    """Take a device away from this location."""
    loc = load_location(session, location_id)
    device_id = device_ids(session, [slug])[slug]
    set_device_location(session, device_id, None)
    log.record(
        "location.devices", f"location:{loc.name}", audit.OK, {"removed": [slug]}, session=session
    )
    session.commit()
