"""Roles, grants and the devices a user may act on.

Rules (the same in :func:`permitted_devices` and :func:`explain`, which share
:func:`_sources`):

- A user's *role actions* are the union of the actions of their roles. Admins (role ``admin``)
  may do every device action on every device.
- Device actions are ``view``, ``tail``, ``export``, ``attribute`` and ``manage``; ``manage``
  needs the role action ``manage_devices``, the others the role action of the same name.
- A grant binds a user or one of their roles to a device, a device group or a location with a set
  of device actions. A grant gives an action only when the user's roles include it too: a
  viewer granted ``export`` still cannot export (the explanation says so).
- A location manager gets their role's device actions on every device of the locations they run
  (``user_locations``).
- A device belongs to the location ``devices.location_id`` names, or, when that is empty, to the
  location whose name equals the free-text ``devices.location`` (so devices added with
  ``logmaster device add --location X`` are covered without a second step).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from logmaster.api.models import (
    DEVICE_LOCATION,
    DeviceGroup,
    DeviceGroupMember,
    Grant,
    Location,
    Role,
    User,
    UserLocation,
    UserRole,
)

ACTIONS = (
    "manage_users",
    "manage_devices",
    "view",
    "tail",
    "export",
    "attribute",
    "view_compliance",
    "view_audit",
)
DEVICE_ACTIONS = ("view", "tail", "export", "attribute", "manage")
ROLES = ("admin", "network_manager", "security_analyst", "location_manager", "viewer")


def role_action_for(device_action: str) -> str:
    """The role action a device action needs."""
    if device_action not in DEVICE_ACTIONS:
        raise ValueError(f"unknown device action {device_action!r}; one of {DEVICE_ACTIONS}")
    return "manage_devices" if device_action == "manage" else device_action


def user_roles(session: Session, user_id: int) -> list[Role]:
    return list(
        session.scalars(
            sa.select(Role)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user_id)
        )
    )


def role_actions(roles: list[Role]) -> set[str]:
    return {a for r in roles for a in r.action_names}


def device_locations(session: Session) -> dict[int, int | None]:
    """device id -> location id (``location_id``, else the location named like ``location``)."""
    by_name = dict(session.execute(sa.select(Location.name, Location.id)).all())
    rows = session.execute(
        sa.select(DEVICE_LOCATION.c.id, DEVICE_LOCATION.c.location_id, DEVICE_LOCATION.c.location)
    )
    return {d: (loc if loc is not None else by_name.get(text or "")) for d, loc, text in rows}


def all_device_ids(session: Session) -> set[int]:
    return set(session.scalars(sa.select(DEVICE_LOCATION.c.id)))


@dataclass
class Source:
    """One reason a user has (or would have) actions on some devices."""

    kind: str  # admin | grant | location
    text: str
    text_tr: str
    actions: set[str]
    devices: set[int] | None  # None = every device
    grant_id: int | None = None


def _grant_devices(
    session: Session, grant: Grant, locations: dict[int, int | None]
) -> tuple[set[int], str, str]:
    if grant.device_id is not None:
        slug = session.scalar(
            sa.select(DEVICE_LOCATION.c.slug).where(DEVICE_LOCATION.c.id == grant.device_id)
        )
        return {grant.device_id}, f"device {slug}", f"cihaz {slug}"
    if grant.device_group_id is not None:
        name = session.scalar(
            sa.select(DeviceGroup.name).where(DeviceGroup.id == grant.device_group_id)
        )
        members = set(
            session.scalars(
                sa.select(DeviceGroupMember.device_id).where(
                    DeviceGroupMember.group_id == grant.device_group_id
                )
            )
        )
        return members, f"device group {name}", f"cihaz grubu {name}"
    name = session.scalar(sa.select(Location.name).where(Location.id == grant.location_id))
    members = {d for d, loc in locations.items() if loc == grant.location_id}
    return members, f"location {name}", f"konum {name}"


def _sources(session: Session, user: User) -> tuple[list[Source], set[str]]:
    roles = user_roles(session, user.id)
    allowed = role_actions(roles)
    names = {r.name for r in roles}
    sources: list[Source] = []
    if "admin" in names:
        sources.append(
            Source(
                "admin",
                "role admin: every device",
                "admin rolü: tüm cihazlar",
                set(DEVICE_ACTIONS),
                None,
            )
        )
        return sources, allowed
    locations = device_locations(session)
    role_ids = {r.id: r.name for r in roles}
    grants = session.scalars(
        sa.select(Grant)
        .where(sa.or_(Grant.user_id == user.id, Grant.role_id.in_(list(role_ids) or [-1])))
        .order_by(Grant.id)
    )
    for grant in grants:
        devices, target, target_tr = _grant_devices(session, grant, locations)
        who = "the user" if grant.user_id is not None else f"role {role_ids[grant.role_id or 0]}"
        who_tr = (
            "kullanıcı" if grant.user_id is not None else f"{role_ids[grant.role_id or 0]} rolü"
        )
        acts = ", ".join(grant.actions)
        sources.append(
            Source(
                "grant",
                f"grant {grant.id}: {who} may {acts} on {target}",
                f"yetki {grant.id}: {who_tr}, {target_tr} üzerinde {acts}",
                set(grant.actions),
                devices,
                grant.id,
            )
        )
    if "location_manager" in names:
        manager = next(r for r in roles if r.name == "location_manager")
        actions = {a for a in DEVICE_ACTIONS if role_action_for(a) in manager.action_names}
        mine = session.execute(
            sa.select(Location.id, Location.name)
            .join(UserLocation, UserLocation.location_id == Location.id)
            .where(UserLocation.user_id == user.id)
        )
        for loc_id, loc_name in mine:
            sources.append(
                Source(
                    "location",
                    f"location manager of {loc_name}",
                    f"{loc_name} konumunun yöneticisi",
                    actions,
                    {d for d, loc in locations.items() if loc == loc_id},
                )
            )
    return sources, allowed


def permitted_devices(session: Session, user_id: int, action: str) -> set[int]:
    """Ids of the devices on which the user may perform the device action ``action``."""
    needed = role_action_for(action)
    user = session.get(User, user_id)
    if user is None or not user.active:
        return set()
    sources, allowed = _sources(session, user)
    if needed not in allowed:
        return set()
    out: set[int] = set()
    for source in sources:
        if action not in source.actions:
            continue
        if source.devices is None:
            return all_device_ids(session)
        out |= source.devices
    return out


@dataclass
class ActionVerdict:
    allowed: bool
    reasons: list[str] = field(default_factory=list)
    reasons_tr: list[str] = field(default_factory=list)


@dataclass
class Explanation:
    """Why a user can or cannot perform each device action on one device."""

    user_id: int
    username: str
    device_id: int
    device: str
    roles: list[str]
    actions: dict[str, ActionVerdict]


def explain(session: Session, user_id: int, device_id: int) -> Explanation:
    """Per device action: allowed or not, and the grants/roles/locations that decide it."""
    user = session.get(User, user_id)
    slug = session.scalar(
        sa.select(DEVICE_LOCATION.c.slug).where(DEVICE_LOCATION.c.id == device_id)
    )
    if user is None or slug is None:
        raise LookupError("no such user or device")
    sources, allowed = _sources(session, user)
    roles = sorted(r.name for r in user_roles(session, user.id))
    verdicts: dict[str, ActionVerdict] = defaultdict(lambda: ActionVerdict(False))
    for action in DEVICE_ACTIONS:
        verdict = verdicts[action]
        needed = role_action_for(action)
        covering = [
            s
            for s in sources
            if action in s.actions and (s.devices is None or device_id in s.devices)
        ]
        if not user.active:
            verdict.reasons.append("the account is disabled")
            verdict.reasons_tr.append("hesap devre dışı")
            continue
        if needed not in allowed:
            verdict.reasons.append(
                f"none of the roles ({', '.join(roles) or 'none'}) includes {needed}"
            )
            verdict.reasons_tr.append(
                f"rollerin hiçbiri ({', '.join(roles) or 'yok'}) {needed} içermiyor"
            )
            for s in covering:
                verdict.reasons.append(f"{s.text} (not effective without the role action)")
                verdict.reasons_tr.append(f"{s.text_tr} (rol izni olmadan geçersiz)")
            continue
        if not covering:
            verdict.reasons.append(f"no grant or location gives {action} on {slug}")
            verdict.reasons_tr.append(f"{slug} üzerinde {action} veren yetki veya konum yok")
            continue
        verdict.allowed = True
        verdict.reasons.extend(s.text for s in covering)
        verdict.reasons_tr.extend(s.text_tr for s in covering)
    return Explanation(user.id, user.username, device_id, slug, roles, dict(verdicts))
