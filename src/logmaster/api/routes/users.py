"""Users: list, create, edit (roles, locations, networks, windows), reset password, unlock.

Every route needs ``manage_users``; every change is audited in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator

from logmaster.api import accounts, audit, mfa, throttle
from logmaster.api.access import Window, check_rules, parse_networks
from logmaster.api.accounts import AccountError, revoke_sessions, set_password, set_roles
from logmaster.api.deps import (
    AuditLog,
    DbSession,
    Principal,
    RowId,
    SourceIp,
    require,
    settings_of,
)
from logmaster.api.models import Location, User, UserLocation
from logmaster.api.problems import ProblemError, bad_request, conflict, not_found

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Principal, require("manage_users")]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {value!r}") from exc
    return value


def _networks(value: list[str]) -> list[str]:
    return [str(n) for n in parse_networks(value)]


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    email: str
    source: str
    active: bool
    roles: list[str]
    locations: list[str]
    timezone: str
    allowed_networks: list[str]
    allowed_windows: list[Window]
    mfa_enabled: bool
    must_change_password: bool
    last_login_at: dt.datetime | None
    created_at: dt.datetime


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str | None = Field(
        default=None, max_length=1024, description="Required for local users."
    )
    source: str = Field(default="local", pattern="^(local|ldap)$")
    roles: list[str] = Field(default_factory=list)
    display_name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=200)
    timezone: str = Field(default="Europe/Istanbul", max_length=64)

    _zone = field_validator("timezone")(_zone)


class UserUpdate(BaseModel):
    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=200)
    active: bool | None = None
    roles: list[str] | None = None
    locations: list[str] | None = Field(
        default=None, description="Names of the locations this user manages (location managers)."
    )
    timezone: str | None = Field(default=None, max_length=64)
    allowed_networks: list[str] | None = Field(
        default=None, description="CIDR networks the user may work from; empty = anywhere."
    )
    allowed_windows: list[Window] | None = Field(
        default=None, description="Weekly windows in the user's timezone; empty = any time."
    )
    must_change_password: bool | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _zone(value)

    @field_validator("allowed_networks")
    @classmethod
    def _nets(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _networks(value)


class PasswordReset(BaseModel):
    new_password: str = Field(min_length=1, max_length=1024)


class Done(BaseModel):
    ok: bool = True
    count: int | None = None


def user_out(session: DbSession, user: User) -> UserOut:
    locations = list(
        session.scalars(
            sa.select(Location.name)
            .join(UserLocation, UserLocation.location_id == Location.id)
            .where(UserLocation.user_id == user.id)
            .order_by(Location.name)
        )
    )
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        source=user.source,
        active=user.active,
        roles=sorted(user.role_names),
        locations=locations,
        timezone=user.timezone,
        allowed_networks=list(user.allowed_networks or []),
        allowed_windows=[Window.model_validate(w) for w in user.allowed_windows or []],
        mfa_enabled=mfa.enabled(session, user.id),
        must_change_password=user.must_change_password,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
    )


def load_user(session: DbSession, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise not_found(f"user {user_id}", f"{user_id} numaralı kullanıcı")
    return user


def _account_error(exc: AccountError) -> ProblemError:
    if "already exists" in str(exc):
        return conflict(str(exc), exc.message_tr)
    return bad_request(str(exc), exc.message_tr, kind="invalid-account")


@router.get("")
def list_users(principal: Admin, session: DbSession) -> list[UserOut]:
    """Every account, local and LDAP."""
    return [user_out(session, u) for u in session.scalars(sa.select(User).order_by(User.username))]


@router.post("", status_code=201)
def create_user(
    body: UserCreate, principal: Admin, session: DbSession, request: Request, log: AuditLog
) -> UserOut:
    """Add an account (local: with a password that meets the policy)."""
    try:
        user = accounts.create_user(
            session,
            settings_of(request).api,
            body.username,
            body.password,
            body.roles,
            source=body.source,
            display_name=body.display_name,
            email=body.email,
            timezone=body.timezone,
        )
    except AccountError as exc:
        raise _account_error(exc) from exc
    log.record(
        "user.create",
        f"user:{user.username}",
        audit.OK,
        {"roles": body.roles, "source": body.source},
        session=session,
    )
    session.commit()
    return user_out(session, user)


@router.get("/{user_id}")
def get_user(user_id: RowId, principal: Admin, session: DbSession) -> UserOut:
    """One account."""
    return user_out(session, load_user(session, user_id))


def _set_locations(session: DbSession, user: User, names: list[str]) -> None:
    found = dict(
        session.execute(sa.select(Location.name, Location.id).where(Location.name.in_(names))).all()
    )
    missing = sorted(set(names) - set(found))
    if missing:
        raise bad_request(
            f"unknown location(s): {', '.join(missing)}",
            f"bilinmeyen konum(lar): {', '.join(missing)}",
            kind="unknown-location",
        )
    session.execute(sa.delete(UserLocation).where(UserLocation.user_id == user.id))
    for location_id in found.values():
        session.add(UserLocation(user_id=user.id, location_id=location_id))


def _not_locking_out(user: User, ip: str) -> None:
    """409 when the admin's own new networks/windows would refuse the request they make now."""
    try:
        check_rules(
            user.username,
            list(user.allowed_networks or []),
            list(user.allowed_windows or []),
            user.timezone,
            ip,
        )
    except ProblemError as exc:
        raise conflict(
            f"These rules would lock you out right now: {exc.detail}",
            f"Bu kurallar sizi hemen dışarıda bırakır: {exc.detail_tr}",
        ) from exc


@router.patch("/{user_id}")
def update_user(
    user_id: RowId,
    body: UserUpdate,
    principal: Admin,
    session: DbSession,
    log: AuditLog,
    ip: SourceIp,
) -> UserOut:
    """Change an account; disabling it or changing its roles closes its sessions."""
    user = load_user(session, user_id)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, mode="json")
    if user.id == principal.user_id and (
        changes.get("active") is False or ("roles" in changes and "admin" not in changes["roles"])
    ):
        raise conflict(
            "You cannot disable yourself or take away your own admin role.",
            "Kendinizi devre dışı bırakamaz veya kendi admin rolünüzü kaldıramazsınız.",
        )
    for name in (
        "display_name",
        "email",
        "active",
        "timezone",
        "allowed_networks",
        "allowed_windows",
        "must_change_password",
    ):
        if name in changes and changes[name] is not None:
            setattr(user, name, changes[name])
    if user.id == principal.user_id:
        _not_locking_out(user, ip)
    try:
        if body.roles is not None:
            set_roles(session, user, body.roles)
    except AccountError as exc:
        raise _account_error(exc) from exc
    if body.locations is not None:
        _set_locations(session, user, body.locations)
    if changes.get("active") is False or "roles" in changes:
        # An admin editing their own roles keeps the session they are using.
        keep = principal.session_id if user.id == principal.user_id else None
        revoke_sessions(session, user.id, "admin-change", keep=keep)
    log.record("user.update", f"user:{user.username}", audit.OK, changes, session=session)
    session.commit()
    session.refresh(user)
    return user_out(session, user)


@router.post("/{user_id}/password")
def reset_password(
    user_id: RowId,
    body: PasswordReset,
    principal: Admin,
    session: DbSession,
    request: Request,
    log: AuditLog,
) -> Done:
    """Set a new password for a local account; its sessions are closed."""
    user = load_user(session, user_id)
    try:
        set_password(
            session, settings_of(request).api, user, body.new_password, reason="admin-reset"
        )
    except AccountError as exc:
        raise _account_error(exc) from exc
    user.must_change_password = True
    log.record("user.password-reset", f"user:{user.username}", audit.OK, {}, session=session)
    session.commit()
    return Done()


@router.post("/{user_id}/revoke-sessions")
def revoke_user_sessions(
    user_id: RowId, principal: Admin, session: DbSession, log: AuditLog
) -> Done:
    """Sign the user out everywhere (refresh and access tokens stop working)."""
    user = load_user(session, user_id)
    count = revoke_sessions(session, user.id, "admin-revoke")
    log.record(
        "user.revoke-sessions",
        f"user:{user.username}",
        audit.OK,
        {"sessions": count},
        session=session,
    )
    session.commit()
    return Done(count=count)


@router.post("/{user_id}/unlock")
def unlock_user(user_id: RowId, principal: Admin, session: DbSession, log: AuditLog) -> Done:
    """Clear the failed sign-in counter (lockout) of the account."""
    user = load_user(session, user_id)
    count = throttle.unlock(session, username=user.username)
    log.record("user.unlock", f"user:{user.username}", audit.OK, {}, session=session)
    session.commit()
    return Done(count=count)


@router.post("/{user_id}/mfa/reset")
def reset_mfa(user_id: RowId, principal: Admin, session: DbSession, log: AuditLog) -> Done:
    """Remove the user's second factor (lost phone); they enrol again at next sign-in."""
    user = load_user(session, user_id)
    mfa.disable(session, user.id)
    keep = principal.session_id if user.id == principal.user_id else None
    revoke_sessions(session, user.id, "admin-mfa-reset", keep=keep)
    log.record("user.mfa-reset", f"user:{user.username}", audit.OK, {}, session=session)
    session.commit()
    return Done()
