"""Roles: the five built-in ones and custom ones, their actions and whether MFA is required.

Reading needs ``manage_users``; so does changing. Built-in roles keep their actions (the rules
of the issue name them) but an admin may require a second factor for any role.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from logmaster.api import audit
from logmaster.api.deps import AuditLog, DbSession, Principal, require
from logmaster.api.models import Role, RoleAction
from logmaster.api.problems import conflict, not_found
from logmaster.api.rbac import ACTIONS

router = APIRouter(prefix="/roles", tags=["roles"])
Admin = Annotated[Principal, require("manage_users")]


def _actions(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - set(ACTIONS))
    if unknown:
        raise ValueError(f"unknown action(s) {', '.join(unknown)}; known: {', '.join(ACTIONS)}")
    return sorted(set(value))


class RoleOut(BaseModel):
    name: str
    description: str
    builtin: bool
    mfa_required: bool
    actions: list[str]


class RoleCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(default="", max_length=500)
    actions: list[str] = Field(default_factory=list)
    mfa_required: bool = False

    _check = field_validator("actions")(_actions)


class RoleUpdate(BaseModel):
    description: str | None = Field(default=None, max_length=500)
    actions: list[str] | None = None
    mfa_required: bool | None = None

    _check = field_validator("actions")(_actions)


def role_out(role: Role) -> RoleOut:
    return RoleOut(
        name=role.name,
        description=role.description,
        builtin=role.builtin,
        mfa_required=role.mfa_required,
        actions=sorted(role.action_names),
    )


def load_role(session: DbSession, name: str) -> Role:
    role = session.scalar(sa.select(Role).where(Role.name == name))
    if role is None:
        raise not_found(f"role {name}", f"{name} rolü")
    return role


@router.get("")
def list_roles(principal: Admin, session: DbSession) -> list[RoleOut]:
    """Every role with its actions."""
    return [role_out(r) for r in session.scalars(sa.select(Role).order_by(Role.id))]


@router.post("", status_code=201)
def create_role(body: RoleCreate, principal: Admin, session: DbSession, log: AuditLog) -> RoleOut:
    """Add a custom role."""
    if session.scalar(sa.select(Role.id).where(Role.name == body.name)) is not None:
        raise conflict(f"role {body.name} already exists", f"{body.name} rolü zaten var")
    role = Role(
        name=body.name, description=body.description, builtin=False, mfa_required=body.mfa_required
    )
    role.actions = [RoleAction(action=a) for a in body.actions]
    session.add(role)
    log.record("role.create", f"role:{body.name}", audit.OK, body.model_dump(), session=session)
    session.commit()
    return role_out(role)


@router.patch("/{name}")
def update_role(
    name: str, body: RoleUpdate, principal: Admin, session: DbSession, log: AuditLog
) -> RoleOut:
    """Change a role (built-in roles: only the description and mfa_required)."""
    role = load_role(session, name)
    if body.actions is not None:
        if role.builtin:
            raise conflict(
                f"the actions of the built-in role {name} are fixed",
                f"yerleşik {name} rolünün izinleri değiştirilemez",
            )
        role.actions = [RoleAction(action=a) for a in body.actions]
    if body.description is not None:
        role.description = body.description
    if body.mfa_required is not None:
        role.mfa_required = body.mfa_required
    log.record(
        "role.update",
        f"role:{name}",
        audit.OK,
        body.model_dump(exclude_unset=True),
        session=session,
    )
    session.commit()
    session.refresh(role)
    return role_out(role)


@router.delete("/{name}", status_code=204)
def delete_role(name: str, principal: Admin, session: DbSession, log: AuditLog) -> None:
    """Remove a custom role (its grants and memberships go with it)."""
    role = load_role(session, name)
    if role.builtin:
        raise conflict(
            f"the built-in role {name} cannot be deleted", f"yerleşik {name} rolü silinemez"
        )
    session.delete(role)
    log.record("role.delete", f"role:{name}", audit.OK, {}, session=session)
    session.commit()
