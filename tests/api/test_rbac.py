"""Roles, grants, locations, device groups and the explanation of permissions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from conftest import ApiServer, SignedIn
from logmaster.api import rbac
from logmaster.api.deps import scope_for

Grant = Callable[..., dict[str, Any]]


def _me(user: SignedIn) -> dict[str, list[str]]:
    r = user.get("/permissions/me")
    assert r.status_code == 200, r.text
    result: dict[str, list[str]] = r.json()["actions"]
    return result


def test_admin_sees_every_device(admin: SignedIn, add_device: Callable[..., int]) -> None:
    """Admin has every device action on every device without a grant."""
    add_device("gw1")
    add_device("gw2")
    mine = _me(admin)
    assert all(mine[a] == ["gw1", "gw2"] for a in rbac.DEVICE_ACTIONS)


def test_grant_to_user_device_and_role_cap(
    as_role: Callable[..., SignedIn], add_device: Callable[..., int], grant: Grant
) -> None:
    """A grant gives only what the role allows: a viewer granted export still cannot export."""
    add_device("gw1")
    add_device("gw2")
    viewer = as_role("viewer")
    assert _me(viewer)["view"] == []
    grant(user=viewer.username, device="gw1", actions=["view", "export"])
    mine = _me(viewer)
    assert mine["view"] == ["gw1"]
    assert mine["export"] == []
    why = viewer.get("/permissions/explain", params={"device": "gw1"}).json()
    assert why["actions"]["view"]["allowed"] is True
    assert any("grant" in r for r in why["actions"]["view"]["reasons"])
    assert why["actions"]["export"]["allowed"] is False
    assert "export" in why["actions"]["export"]["reasons"][0]
    assert why["actions"]["export"]["reasons_tr"]


def test_role_grant_group_and_location(
    api: ApiServer,
    admin: SignedIn,
    as_role: Callable[..., SignedIn],
    add_device: Callable[..., int],
    grant: Grant,
) -> None:
    """Grants to a role reach its members; device groups and locations expand to devices."""
    add_device("a1", location="Ankara")
    add_device("a2")
    add_device("i1")
    analyst = as_role("security_analyst")
    other = as_role("security_analyst")
    r = admin.post("/device-groups", json={"name": "core", "devices": ["a2"]})
    assert r.status_code == 201, r.text
    r = admin.post("/locations", json={"name": "Ankara"})
    assert r.status_code == 201, r.text
    grant(role="security_analyst", location="Ankara", actions=["view", "tail"])
    grant(user=analyst.username, device_group="core", actions=["view", "export"])
    assert _me(analyst)["view"] == ["a1", "a2"]
    assert _me(analyst)["export"] == ["a2"]
    assert _me(other)["view"] == ["a1"]
    assert _me(other)["tail"] == ["a1"]
    # Moving i1 into Ankara (through the API) extends the role grant at once.
    loc = admin.get("/locations").json()[0]
    r = admin.post(f"/locations/{loc['id']}/devices", json={"devices": ["i1"]})
    assert r.json()["devices"] == ["a1", "i1"]
    assert _me(other)["view"] == ["a1", "i1"]
    # Removing a member of the group takes the device away.
    group = admin.get("/device-groups").json()[0]
    admin.put(f"/device-groups/{group['id']}/devices", json={"devices": []})
    assert _me(analyst)["export"] == []
    # The DeviceScope interface returns the same.
    with Session(api.engine) as s:
        uid = admin.get("/users").json()
        analyst_id = next(u["id"] for u in uid if u["username"] == analyst.username)
        scope = scope_for(s, analyst_id, "view")
    assert scope.allows("a1") and not scope.allows("a2") and scope.slugs == {"a1", "i1"}


def test_location_manager_sees_their_locations(
    admin: SignedIn, as_role: Callable[..., SignedIn], add_device: Callable[..., int]
) -> None:
    """A location manager sees and manages the devices of the locations they run, no others."""
    add_device("ist1", location="Istanbul")
    add_device("izm1", location="Izmir")
    manager = as_role("location_manager")
    admin.post("/locations", json={"name": "Istanbul"})
    admin.post("/locations", json={"name": "Izmir"})
    users = admin.get("/users").json()
    uid = next(u["id"] for u in users if u["username"] == manager.username)
    r = admin.patch(f"/users/{uid}", json={"locations": ["Istanbul"]})
    assert r.status_code == 200, r.text
    assert r.json()["locations"] == ["Istanbul"]
    mine = _me(manager)
    assert mine["view"] == ["ist1"] and mine["manage"] == ["ist1"] and mine["tail"] == ["ist1"]
    assert mine["export"] == []
    why = admin.get(
        "/permissions/explain", params={"device": "ist1", "user": manager.username}
    ).json()
    assert "location manager of Istanbul" in why["actions"]["view"]["reasons"][0]
    # Explaining a device they cannot see is a 404 for them (no leak), fine for an admin.
    assert manager.get("/permissions/explain", params={"device": "izm1"}).status_code == 404
    assert manager.get("/permissions/explain", params={"device": "nope"}).status_code == 404
    denied = admin.get(
        "/permissions/explain", params={"device": "izm1", "user": manager.username}
    ).json()
    assert denied["actions"]["view"]["allowed"] is False


def test_non_admin_cannot_manage(as_role: Callable[..., SignedIn]) -> None:
    """Account and grant management need manage_users: 403 problem naming the permission."""
    analyst = as_role("security_analyst")
    for method, path, body in [
        ("GET", "/users", None),
        ("POST", "/grants", {"user": analyst.username, "device": "x", "actions": ["view"]}),
        ("POST", "/locations", {"name": "x"}),
        ("GET", "/roles", None),
    ]:
        r = analyst.request(method, path, json=body)
        assert r.status_code == 403, (path, r.text)
        assert "manage_users" in r.json()["detail"]


def test_role_change_applies_immediately(
    admin: SignedIn, as_role: Callable[..., SignedIn], add_device: Callable[..., int]
) -> None:
    """Changing a user's roles closes their sessions (old tokens stop working)."""
    add_device("gw1")
    viewer = as_role("viewer")
    uid = next(u["id"] for u in admin.get("/users").json() if u["username"] == viewer.username)
    r = admin.patch(f"/users/{uid}", json={"roles": ["admin"]})
    assert r.status_code == 200
    assert viewer.get("/permissions/me").status_code == 401


def test_grant_validation(admin: SignedIn, add_device: Callable[..., int]) -> None:
    """A grant needs one subject, one target, known actions and existing names."""
    add_device("gw1")
    bad = [
        {"user": "admin", "role": "viewer", "device": "gw1", "actions": ["view"]},
        {"user": "admin", "device": "gw1", "location": "x", "actions": ["view"]},
        {"user": "admin", "device": "gw1", "actions": ["fly"]},
        {"user": "admin", "device": "gw1", "actions": []},
    ]
    for body in bad:
        assert admin.post("/grants", json=body).status_code == 422, body
    r = admin.post("/grants", json={"user": "admin", "device": "nope", "actions": ["view"]})
    assert r.status_code == 400 and "nope" in r.json()["detail"]
    g = admin.post("/grants", json={"user": "admin", "device": "gw1", "actions": ["view"]})
    assert g.status_code == 201
    assert admin.delete(f"/grants/{g.json()['id']}").status_code == 204
    assert admin.delete(f"/grants/{g.json()['id']}").status_code == 404


def test_builtin_roles_and_mfa_flag(admin: SignedIn) -> None:
    """The five built-in roles exist with their actions; MFA can be required per role."""
    roles = {r["name"]: r for r in admin.get("/roles").json()}
    assert set(roles) == set(rbac.ROLES)
    assert set(roles["admin"]["actions"]) == set(rbac.ACTIONS)
    assert roles["viewer"]["actions"] == ["view"]
    assert set(roles["network_manager"]["actions"]) == {
        "manage_devices",
        "view",
        "tail",
        "attribute",
    }
    r = admin.patch("/roles/viewer", json={"actions": ["export"]})
    assert r.status_code == 409
    r = admin.patch("/roles/viewer", json={"mfa_required": True})
    assert r.status_code == 200 and r.json()["mfa_required"] is True
    assert admin.delete("/roles/viewer").status_code == 409


ACCOUNT_MODULES = {
    f"logmaster.api.routes.{m}"
    for m in ("auth", "users", "roles", "permissions", "locations", "device_groups", "audit")
}
PUBLIC = {"login", "refresh", "logout"}  # sign-in itself; refresh/logout carry the cookie


def _needs_principal(dependant: Any) -> bool:
    from logmaster.api.deps import current_principal

    return any(d.call is current_principal or _needs_principal(d) for d in dependant.dependencies)


def test_every_account_route_checks_the_caller() -> None:
    """Every route of the account modules depends on current_principal, except sign-in."""
    import importlib

    from fastapi.routing import APIRoute

    routes = [
        r
        for m in sorted(ACCOUNT_MODULES)
        for r in importlib.import_module(m).router.routes
        if isinstance(r, APIRoute)
    ]
    assert len(routes) > 30
    unchecked = {r.name for r in routes if not _needs_principal(r.dependant)}
    assert unchecked == PUBLIC


@pytest.mark.postgres
def test_permissions_on_postgres(
    pg_api: ApiServer,
    make_user: Callable[..., tuple[str, str]],
    signin: Callable[..., SignedIn],
    add_device: Callable[..., int],
) -> None:
    """Sign-in, grants by group and location, explanation and audit on a PostgreSQL database."""
    srv = pg_api
    admin = signin("admin", srv.admin_password, server=srv)
    add_device("p1", location="Bursa", server=srv)
    add_device("p2", server=srv)
    viewer = signin(*make_user("viewer", server=srv), server=srv)
    assert admin.post("/locations", json={"name": "Bursa"}).status_code == 201
    assert admin.post("/device-groups", json={"name": "g", "devices": ["p2"]}).status_code == 201
    assert (
        admin.post(
            "/grants", json={"role": "viewer", "location": "Bursa", "actions": ["view"]}
        ).status_code
        == 201
    )
    assert (
        admin.post(
            "/grants",
            json={"user": viewer.username, "device_group": "g", "actions": ["view", "tail"]},
        ).status_code
        == 201
    )
    assert _me(viewer)["view"] == ["p1", "p2"]
    assert _me(viewer)["tail"] == []
    why = viewer.get("/permissions/explain", params={"device": "p2"}).json()
    assert why["actions"]["view"]["allowed"] and not why["actions"]["tail"]["allowed"]
    assert viewer.refresh().status_code == 200
    assert admin.get("/audit/verify").json()["ok"] is True


def test_migration_turns_free_text_locations_into_rows(tmp_path: Any) -> None:
    """0003 makes a location per distinct devices.location and points the devices at it."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from logmaster.db import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0002")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for i, loc in enumerate(["Ankara", "Izmir", "Ankara", ""]):
            conn.execute(
                sa.text(
                    "INSERT INTO devices (slug, name, location, timezone, status, created_at,"
                    " updated_at) VALUES (:s, '', :l, 'Europe/Istanbul', 'approved', :t, :t)"
                ),
                {"s": f"d{i}", "l": loc, "t": "2026-11-28 00:00:00"},
            )
    command.upgrade(cfg, "0003")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT d.slug, d.location, l.name FROM devices d "
                "LEFT JOIN locations l ON l.id = d.location_id ORDER BY d.slug"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("d0", "Ankara", "Ankara"),
        ("d1", "Izmir", "Izmir"),
        ("d2", "Ankara", "Ankara"),
        ("d3", "", None),
    ]
