"""Grants (who may do what on which devices) and the explanation of a user's permissions.

Managing grants needs ``manage_users``. ``GET /permissions/explain`` answers why a user can or
cannot act on a device: admins ask about anyone; everyone else only about themselves, and only
about devices they can view (any other device is 404, so its existence does not leak).
``GET /permissions/me`` lists the devices the caller may use per device action.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator, model_validator

from logmaster.api import audit, rbac
from logmaster.api.deps import (
    AuditLog,
    CurrentPrincipal,
    DbSession,
    Principal,
    RowId,
    require,
    scope_for,
)
from logmaster.api.models import DEVICE_LOCATION, DeviceGroup, Grant, Location, Role, User
from logmaster.api.problems import bad_request, not_found

router = APIRouter(tags=["permissions"])
Admin = Annotated[Principal, require("manage_users")]


class GrantIn(BaseModel):
    """Exactly one of user/role and exactly one of device/device_group/location."""

    user: str | None = Field(default=None, description="Username.")
    role: str | None = Field(default=None, description="Role name.")
    device: str | None = Field(default=None, description="Device slug.")
    device_group: str | None = Field(default=None, description="Device group name.")
    location: str | None = Field(default=None, description="Location name.")
    actions: list[str] = Field(min_length=1, description=f"Of {', '.join(rbac.DEVICE_ACTIONS)}.")

    @field_validator("actions")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(rbac.DEVICE_ACTIONS))
        if unknown:
            raise ValueError(
                f"unknown device action(s) {', '.join(unknown)}; "
                f"use {', '.join(rbac.DEVICE_ACTIONS)}"
            )
        return sorted(set(value))

    @model_validator(mode="after")
    def _one_each(self) -> GrantIn:
        if (self.user is None) == (self.role is None):
            raise ValueError("give exactly one of user and role")
        targets = [self.device, self.device_group, self.location]
        if sum(t is not None for t in targets) != 1:
            raise ValueError("give exactly one of device, device_group and location")
        return self


class GrantOut(BaseModel):
    id: int
    user: str | None
    role: str | None
    device: str | None
    device_group: str | None
    location: str | None
    actions: list[str]
    created_by: str
    created_at: dt.datetime


class ActionVerdictOut(BaseModel):
    allowed: bool
    reasons: list[str]
    reasons_tr: list[str]


class ExplanationOut(BaseModel):
    user: str
    device: str
    roles: list[str]
    actions: dict[str, ActionVerdictOut]


class MyDevices(BaseModel):
    actions: dict[str, list[str]] = Field(description="Device action -> permitted device slugs.")


def _name(session: DbSession, column: Any, ident: int | None) -> str | None:
    """The name in ``column`` of the row ``ident`` of the column's table (None stays None)."""
    if ident is None:
        return None
    found = session.scalar(sa.select(column).where(column.table.c.id == ident))
    return None if found is None else str(found)


def grant_out(session: DbSession, g: Grant) -> GrantOut:
    return GrantOut(
        id=g.id,
        user=_name(session, User.username, g.user_id),
        role=_name(session, Role.name, g.role_id),
        device=_name(session, DEVICE_LOCATION.c.slug, g.device_id),
        device_group=_name(session, DeviceGroup.name, g.device_group_id),
        location=_name(session, Location.name, g.location_id),
        actions=list(g.actions),
        created_by=g.created_by,
        created_at=g.created_at,
    )


def _lookup(session: DbSession, what: str, column: Any, where: Any, value: str) -> int:
    found = session.scalar(sa.select(column).where(where))
    if found is None:
        raise bad_request(
            f"no {what} named {value!r}", f"{value!r} adında {what} yok", kind="unknown-target"
        )
    return int(found)


@router.get("/grants")
def list_grants(
    principal: Admin, session: DbSession, user: str | None = None, role: str | None = None
) -> list[GrantOut]:
    """Every grant, optionally of one user or role."""
    query = sa.select(Grant).order_by(Grant.id)
    if user is not None:
        query = query.join(User, User.id == Grant.user_id).where(User.username == user)
    if role is not None:
        query = query.join(Role, Role.id == Grant.role_id).where(Role.name == role)
    return [grant_out(session, g) for g in session.scalars(query)]


@router.post("/grants", status_code=201)
def create_grant(body: GrantIn, principal: Admin, session: DbSession, log: AuditLog) -> GrantOut:
    """Give a user or role device actions on a device, device group or location."""
    grant = Grant(actions=body.actions, created_by=principal.username)
    if body.user is not None:
        grant.user_id = _lookup(session, "user", User.id, User.username == body.user, body.user)
    if body.role is not None:
        grant.role_id = _lookup(session, "role", Role.id, Role.name == body.role, body.role)
    if body.device is not None:
        grant.device_id = _lookup(
            session,
            "device",
            DEVICE_LOCATION.c.id,
            DEVICE_LOCATION.c.slug == body.device,
            body.device,
        )
    if body.device_group is not None:
        grant.device_group_id = _lookup(
            session,
            "device group",
            DeviceGroup.id,
            DeviceGroup.name == body.device_group,
            body.device_group,
        )
    if body.location is not None:
        grant.location_id = _lookup(
            session, "location", Location.id, Location.name == body.location, body.location
        )
    session.add(grant)
    session.flush()
    log.record(
        "grant.create",
        f"grant:{grant.id}",
        audit.OK,
        body.model_dump(exclude_none=True),
        session=session,
    )
    session.commit()
    return grant_out(session, grant)


@router.delete("/grants/{grant_id}", status_code=204)
def delete_grant(grant_id: RowId, principal: Admin, session: DbSession, log: AuditLog) -> None:
    """Withdraw a grant."""
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise not_found(f"grant {grant_id}", f"{grant_id} numaralı yetki")
    before = grant_out(session, grant).model_dump(mode="json", exclude_none=True)
    session.delete(grant)
    log.record("grant.delete", f"grant:{grant_id}", audit.OK, before, session=session)
    session.commit()


@router.get("/permissions/explain")
def explain_permissions(
    principal: CurrentPrincipal,
    session: DbSession,
    device: Annotated[str, Query(description="Device slug.")],
    user: Annotated[str | None, Query(description="Username (default: yourself).")] = None,
) -> ExplanationOut:
    """Why a user can or cannot view, tail, export, attribute or manage a device."""
    username = user or principal.username
    if username != principal.username and "manage_users" not in principal.actions:
        raise not_found(f"user {username}", f"{username} kullanıcısı")
    if "manage_users" not in principal.actions and not scope_for(
        session, principal.user_id, "view"
    ).allows(device):
        raise not_found(f"device {device}", f"{device} cihazı")
    user_id = session.scalar(sa.select(User.id).where(User.username == username))
    device_id = session.scalar(
        sa.select(DEVICE_LOCATION.c.id).where(DEVICE_LOCATION.c.slug == device)
    )
    if user_id is None:
        raise not_found(f"user {username}", f"{username} kullanıcısı")
    if device_id is None:
        raise not_found(f"device {device}", f"{device} cihazı")
    result = rbac.explain(session, user_id, device_id)
    return ExplanationOut(
        user=result.username,
        device=result.device,
        roles=result.roles,
        actions={
            a: ActionVerdictOut(allowed=v.allowed, reasons=v.reasons, reasons_tr=v.reasons_tr)
            for a, v in result.actions.items()
        },
    )


@router.get("/permissions/me")
def my_devices(principal: CurrentPrincipal, session: DbSession) -> MyDevices:
    """The devices you may use, per device action."""
    return MyDevices(
        actions={
            a: sorted(scope_for(session, principal.user_id, a).slugs) for a in rbac.DEVICE_ACTIONS
        }
    )
