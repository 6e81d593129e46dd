"""Users through the API and the `logmaster user` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import httpx

from conftest import PASSWORD, ApiServer, SignedIn

NEW = "N3w-Passw0rd-Here!"


def _login(api: ApiServer, username: str, password: str) -> httpx.Response:
    return api.client().post("/auth/login", json={"username": username, "password": password})


def test_create_edit_disable(api: ApiServer, admin: SignedIn) -> None:
    """An admin creates, edits and disables a user; a disabled user cannot sign in."""
    r = admin.post(
        "/users",
        json={
            "username": "ayse",
            "password": PASSWORD,
            "roles": ["viewer", "security_analyst"],
            "display_name": "Ayşe Yılmaz",
        },
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["roles"] == ["security_analyst", "viewer"] and user["source"] == "local"
    assert "password" not in str(user).lower() or "must_change_password" in user
    assert admin.post("/users", json={"username": "ayse", "password": PASSWORD}).status_code == 409
    assert (
        admin.post("/users", json={"username": "Bad Name", "password": PASSWORD}).status_code == 400
    )
    assert (
        admin.post(
            "/users", json={"username": "x", "password": PASSWORD, "roles": ["pilot"]}
        ).status_code
        == 400
    )
    r = admin.patch(
        f"/users/{user['id']}", json={"display_name": "Ayşe Y.", "timezone": "Europe/Berlin"}
    )
    assert r.json()["display_name"] == "Ayşe Y." and r.json()["timezone"] == "Europe/Berlin"
    assert admin.patch(f"/users/{user['id']}", json={"timezone": "Mars/Base"}).status_code == 422
    assert _login(api, "ayse", PASSWORD).status_code == 200
    admin.patch(f"/users/{user['id']}", json={"active": False})
    r = _login(api, "ayse", PASSWORD)
    assert r.status_code == 401 and r.json()["type"].endswith("/account-disabled")


def test_admin_cannot_lock_themselves_out(admin: SignedIn) -> None:
    """Disabling yourself or dropping your own admin role is refused."""
    me = admin.login["user"]["id"]
    assert admin.patch(f"/users/{me}", json={"active": False}).status_code == 409
    assert admin.patch(f"/users/{me}", json={"roles": ["viewer"]}).status_code == 409
    r = admin.patch(f"/users/{me}", json={"allowed_networks": ["192.0.2.0/24"]})
    assert r.status_code == 409 and "lock you out" in r.json()["detail"]
    assert (
        admin.patch(f"/users/{me}", json={"allowed_networks": ["127.0.0.0/8"]}).status_code == 200
    )
    # Editing your own roles or second factor keeps the session you are using.
    assert admin.patch(f"/users/{me}", json={"roles": ["admin", "viewer"]}).status_code == 200
    assert admin.post(f"/users/{me}/mfa/reset").status_code == 200
    assert admin.get("/auth/me").status_code == 200


def test_own_password_change_revokes_other_sessions(
    api: ApiServer, as_role: Callable[..., SignedIn], signin: Callable[..., SignedIn]
) -> None:
    """Changing your password ends your other sessions, keeps this one, needs the old one."""
    here = as_role("viewer")
    there = signin(here.username, PASSWORD)
    wrong = here.post("/auth/password", json={"current_password": "nope", "new_password": NEW})
    assert wrong.status_code == 400
    weak = here.post("/auth/password", json={"current_password": PASSWORD, "new_password": "weak"})
    assert weak.status_code == 400 and weak.json()["type"].endswith("/password-policy")
    ok = here.post("/auth/password", json={"current_password": PASSWORD, "new_password": NEW})
    assert ok.status_code == 200
    assert here.get("/auth/me").status_code == 200
    assert there.get("/auth/me").status_code == 401
    assert there.refresh().status_code == 401
    assert _login(api, here.username, PASSWORD).status_code == 401
    assert _login(api, here.username, NEW).status_code == 200


def test_admin_password_reset(
    api: ApiServer, admin: SignedIn, as_role: Callable[..., SignedIn]
) -> None:
    """An admin reset ends the user's sessions and marks the password for change."""
    user = as_role("viewer")
    r = admin.post(f"/users/{user.login['user']['id']}/password", json={"new_password": NEW})
    assert r.status_code == 200
    assert user.get("/auth/me").status_code == 401
    login = _login(api, user.username, NEW)
    assert login.json()["user"]["must_change_password"] is True
    # Until they choose their own password, only /auth/* answers.
    c = api.client(headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    r = c.get("/permissions/me")
    assert r.status_code == 403 and r.json()["type"].endswith("/password-change-required")
    changed = c.post("/auth/password", json={"current_password": NEW, "new_password": PASSWORD})
    assert changed.status_code == 200
    assert c.get("/permissions/me").status_code == 200


def _cli(
    api: ApiServer, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "logmaster",
            "user",
            *args,
            "--data-dir",
            str(api.settings.data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_cli_user_add_list_reset(api: ApiServer) -> None:
    """`logmaster user add/list/reset-password` work on the API's database, with the policy."""
    weak = _cli(
        api, "add", "mehmet", "--role", "viewer", "--password-env", "PW", env={"PW": "weak"}
    )
    assert weak.returncode == 2 and "password refused" in weak.stderr
    added = _cli(
        api, "add", "mehmet", "--role", "viewer", "--password-env", "PW", env={"PW": PASSWORD}
    )
    assert added.returncode == 0, added.stderr
    assert _login(api, "mehmet", PASSWORD).status_code == 200
    listing = _cli(api, "list")
    assert "mehmet" in listing.stdout and "viewer" in listing.stdout
    reset = _cli(api, "reset-password", "mehmet", "--password-env", "PW", env={"PW": NEW})
    assert reset.returncode == 0, reset.stderr
    assert _login(api, "mehmet", NEW).status_code == 200
    missing = _cli(api, "reset-password", "nobody", "--password-env", "PW", env={"PW": NEW})
    assert missing.returncode == 2 and "no user" in missing.stderr
