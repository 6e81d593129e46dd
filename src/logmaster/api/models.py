"""Account, permission and audit tables of the metadata database (migration 0003).

Map of the tables:

- ``users`` (local or LDAP) ─┬─ ``user_roles`` ── ``roles`` ── ``role_actions``
                             ├─ ``user_locations`` (the locations a location manager runs)
                             ├─ ``auth_sessions`` (one per sign-in) ── ``refresh_tokens`` (family)
                             ├─ ``mfa_secrets``, ``recovery_codes``
- ``grants``: a user *or* a role → a device *or* a device group *or* a location, with actions.
- ``locations`` ── ``devices.location_id``; ``device_groups`` ── ``device_group_members``.
- ``permission_state``: a generation number moved by triggers on every table above that decides
  what a user may do (migration 0007).
- ``throttle``: failed sign-ins per account / per source address (shared by API processes).
- ``audit_entries`` (append-only, hash-chained; triggers refuse UPDATE and DELETE) and
  ``audit_head`` (the last sequence number and hash, so a cut tail is detected too).

``devices`` belongs to :mod:`logmaster.db`; its ``location_id`` column (added by 0003) is read and
written through :data:`DEVICE_LOCATION`, so the collector's model stays untouched.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from logmaster.db import Base, utcnow


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite keeps no offset and returns naive values; PostgreSQL returns aware ones. Binding
    converts to UTC (a naive value is taken as UTC), reading attaches UTC, so API responses are
    RFC 3339 with an offset on both databases and comparisons never mix the two kinds.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        utc = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        return as_utc(value)


# The part of the collector's ``devices`` table that permissions read (not a mapped class).
DEVICE_LOCATION = sa.table(
    "devices",
    sa.column("id", Integer),
    sa.column("slug", String),
    sa.column("location", String),
    sa.column("location_id", Integer),
)

# One row: the generation number that triggers move on every change a permission depends on
# (migration 0007); the API caches roles and device scopes per generation (api/permcache.py).
PERMISSION_STATE = sa.table(
    "permission_state",
    sa.column("id", Integer),
    sa.column("generation", sa.BigInteger),
)


class Role(Base):
    """A named set of actions (``role_actions``); the five built-in roles cannot be deleted."""

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    mfa_required: Mapped[bool] = mapped_column(Boolean, default=False)
    actions: Mapped[list[RoleAction]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def action_names(self) -> set[str]:
        return {a.action for a in self.actions}


class RoleAction(Base):
    __tablename__ = "role_actions"

    role_id: Mapped[int] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    action: Mapped[str] = mapped_column(String(32), primary_key=True)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[int] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class User(Base):
    """An operator account. ``source`` is 'local' (argon2id hash here) or 'ldap' (bind)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(8), default="local")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Istanbul")
    # CIDR strings; empty = from anywhere.
    allowed_networks: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{"days": [0..6] (Monday = 0), "start": "HH:MM", "end": "HH:MM"}]; empty = any time.
    allowed_windows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    roles: Mapped[list[Role]] = relationship(secondary="user_roles", lazy="selectin")

    @property
    def role_names(self) -> set[str]:
        return {r.name for r in self.roles}


class Location(Base):
    """A site (branch, campus); devices stand at one, location managers run some."""

    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class UserLocation(Base):
    """A location whose devices a location manager sees and manages."""

    __tablename__ = "user_locations"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    location_id: Mapped[int] = mapped_column(
        ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class DeviceGroup(Base):
    __tablename__ = "device_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class DeviceGroupMember(Base):
    __tablename__ = "device_group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("device_groups.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Grant(Base):
    """Exactly one subject (user or role) gets ``actions`` on exactly one target."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None
    )
    role_id: Mapped[int | None] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), index=True, default=None
    )
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), default=None
    )
    device_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("device_groups.id", ondelete="CASCADE"), default=None
    )
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("locations.id", ondelete="CASCADE"), default=None
    )
    actions: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AuthSession(Base):
    """One sign-in. Access tokens carry its id (``sid``); its refresh tokens form one family."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    method: Mapped[str] = mapped_column(String(16), default="password")  # password | ldap


class RefreshToken(Base):
    """A refresh token, stored as SHA-256 of its secret; ``used_at`` is set when rotated."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), default=None)


class MfaSecret(Base):
    """The TOTP secret of a user, encrypted with <data_dir>/keys/api-mfa.key."""

    __tablename__ = "mfa_secrets"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_encrypted: Mapped[str] = mapped_column(Text)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), default=None)
    # The last accepted TOTP time step: a code is never accepted twice.
    last_step: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), default=None)


class Throttle(Base):
    """Failed sign-ins of one key ('user:NAME' or 'ip:ADDR') in the current window."""

    __tablename__ = "throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), default=None)


class AuditEntry(Base):
    """One audited action. ``hash`` = SHA-256(previous hash || canonical entry)."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str | None] = mapped_column(String(64), index=True)
    source_ip: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(300))
    result: Mapped[str] = mapped_column(String(32))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, hashed as stored
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The one row (id 1) holding the newest sequence number and hash of the audit chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


def as_utc(when: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes (stored as UTC); PostgreSQL aware ones."""
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
