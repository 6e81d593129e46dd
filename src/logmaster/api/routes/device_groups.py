"""Device groups: named sets of devices that grants can target.

Listing needs a signed-in user; changes need ``manage_users`` (groups decide permissions).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, Field

from logmaster.api import audit
from logmaster.api.deps import AuditLog, CurrentPrincipal, DbSession, Principal, RowId, require
from logmaster.api.models import DEVICE_LOCATION, DeviceGroup, DeviceGroupMember
from logmaster.api.problems import conflict, not_found
from logmaster.api.routes.locations import DeviceList, device_ids

router = APIRouter(prefix="/device-groups", tags=["device-groups"])
Admin = Annotated[Principal, require("manage_users")]


class DeviceGroupOut(BaseModel):
    id: int
    name: str
    description: str
    devices: list[str]
    created_at: dt.datetime


class DeviceGroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=500)
    devices: list[str] = Field(default_factory=list, description="Device slugs.")


class DeviceGroupUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=500)


def group_out(
    session: DbSession, group: DeviceGroup, visible: set[str] | None = None
) -> DeviceGroupOut:
    slugs = [
        s
        for s in session.scalars(
            sa.select(DEVICE_LOCATION.c.slug)
            .join(DeviceGroupMember, DeviceGroupMember.device_id == DEVICE_LOCATION.c.id)
            .where(DeviceGroupMember.group_id == group.id)
            .order_by(DEVICE_LOCATION.c.slug)
        )
        if visible is None or s in visible
    ]
    return DeviceGroupOut(
        id=group.id,
        name=group.name,
        description=group.description,
        devices=slugs,
        created_at=group.created_at,
    )


def load_group(session: DbSession, group_id: int) -> DeviceGroup:
    group = session.get(DeviceGroup, group_id)
    if group is None:
        raise not_found(f"device group {group_id}", f"{group_id} numaralı cihaz grubu")
    return group


def _set_members(session: DbSession, group: DeviceGroup, slugs: list[str]) -> None:
    ids = device_ids(session, slugs)
    session.execute(sa.delete(DeviceGroupMember).where(DeviceGroupMember.group_id == group.id))
    for device_id in set(ids.values()):
        session.add(DeviceGroupMember(group_id=group.id, device_id=device_id))


@router.get("")
def list_device_groups(principal: CurrentPrincipal, session: DbSession) -> list[DeviceGroupOut]:
    """Every device group; members are shown only when you may view them."""
    from logmaster.api.deps import scope_for

    visible = (
        None if principal.is_admin else set(scope_for(session, principal.user_id, "view").slugs)
    )
    return [
        group_out(session, g, visible)
        for g in session.scalars(sa.select(DeviceGroup).order_by(DeviceGroup.name))
    ]


@router.post("", status_code=201)
def create_device_group(
    body: DeviceGroupIn, principal: Admin, session: DbSession, log: AuditLog
) -> DeviceGroupOut:
    """Add a device group with its devices."""
    if session.scalar(sa.select(DeviceGroup.id).where(DeviceGroup.name == body.name)):
        raise conflict(
            f"device group {body.name} already exists", f"{body.name} cihaz grubu zaten var"
        )
    group = DeviceGroup(name=body.name, description=body.description)
    session.add(group)
    session.flush()
    _set_members(session, group, body.devices)
    log.record(
        "device-group.create",
        f"device-group:{body.name}",
        audit.OK,
        body.model_dump(),
        session=session,
    )
    session.commit()
    return group_out(session, group)


@router.patch("/{group_id}")
def update_device_group(
    group_id: RowId, body: DeviceGroupUpdate, principal: Admin, session: DbSession, log: AuditLog
) -> DeviceGroupOut:
    """Rename or describe a device group."""
    group = load_group(session, group_id)
    if body.name is not None and body.name != group.name:
        if session.scalar(sa.select(DeviceGroup.id).where(DeviceGroup.name == body.name)):
            raise conflict(
                f"device group {body.name} already exists", f"{body.name} cihaz grubu zaten var"
            )
        group.name = body.name
    if body.description is not None:
        group.description = body.description
    log.record(
        "device-group.update",
        f"device-group:{group.id}",
        audit.OK,
        body.model_dump(exclude_unset=True),
        session=session,
    )
    session.commit()
    return group_out(session, group)


@router.put("/{group_id}/devices")
def set_device_group_devices(
    group_id: RowId, body: DeviceList, principal: Admin, session: DbSession, log: AuditLog
) -> DeviceGroupOut:
    """Replace the members of a device group."""
    group = load_group(session, group_id)
    _set_members(session, group, body.devices)
    log.record(
        "device-group.devices",
        f"device-group:{group.name}",
        audit.OK,
        {"devices": body.devices},
        session=session,
    )
    session.commit()
    return group_out(session, group)


@router.delete("/{group_id}", status_code=204)
def delete_device_group(
    group_id: RowId, principal: Admin, session: DbSession, log: AuditLog
) -> None:
    """Remove a device group (grants on it go with it; the devices stay)."""
    group = load_group(session, group_id)
    session.delete(group)
    log.record("device-group.delete", f"device-group:{group.name}", audit.OK, {}, session=session)
    session.commit()
