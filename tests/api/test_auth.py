"""Sign-in, problem details, first-run admin, refresh rotation, logout, CSRF."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx

from conftest import ADMIN_PASSWORD, ApiServer, SignedIn

PROBLEM = "application/problem+json"


def test_login_returns_tokens_and_me(admin: SignedIn) -> None:
    """The first-run admin signs in; /auth/me names their roles and actions."""
    me = admin.get("/auth/me")
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == "admin"
    assert body["roles"] == ["admin"]
    assert "view_audit" in body["actions"]
    assert admin.login["token_type"] == "bearer"
    assert 890 <= admin.login["expires_in"] <= 900


def test_wrong_password_is_a_problem(client: httpx.Client) -> None:
    """A failed sign-in is a 401 problem detail in English and Turkish."""
    r = client.post("/auth/login", json={"username": "admin", "password": "nope"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/invalid-credentials")
    assert body["detail"] == "Wrong username or password."
    assert body["detail_tr"] == "Kullanıcı adı veya parola yanlış."
    assert body["instance"] == "/api/v1/auth/login"


def test_unknown_user_answers_like_wrong_password(client: httpx.Client) -> None:
    """An unknown username gets the same answer as a wrong password."""
    a = client.post("/auth/login", json={"username": "nobody", "password": "x"})
    b = client.post("/auth/login", json={"username": "admin", "password": "x"})
    assert a.status_code == b.status_code == 401
    assert a.json()["detail"] == b.json()["detail"]


def test_framework_errors_are_problems(client: httpx.Client, admin: SignedIn) -> None:
    """404, 405, 422 and missing authentication all answer application/problem+json."""
    cases = [
        client.get("/no/such/path"),
        client.delete("/auth/login"),
        client.post("/auth/login", json={"username": "admin"}),
        client.post(
            "/auth/login", content=b"{not json", headers={"content-type": "application/json"}
        ),
        client.get("/users"),
        admin.get("/users/999999"),
    ]
    assert [r.status_code for r in cases] == [404, 405, 422, 422, 401, 404]
    for r in cases:
        assert r.headers["content-type"].startswith(PROBLEM), r.text
        body = r.json()
        assert body["status"] == r.status_code and body["title"] and body["detail_tr"]
    assert cases[2].json()["errors"][0]["loc"] == ["body", "password"]


def test_openapi_has_readable_operation_ids(client: httpx.Client) -> None:
    """Operation ids are the route function names (the console client is generated)."""
    schema = client.get("/openapi.json").json()
    ids = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "login",
        "refresh",
        "list_users",
        "create_grant",
        "explain_permissions",
        "list_audit",
    } <= ids
    assert client.get("/docs").status_code == 200


def test_refresh_rotates_and_reuse_revokes_family(
    api: ApiServer, signin: Callable[..., SignedIn]
) -> None:
    """A refresh token works once; presenting a used one ends the whole session."""
    user = signin("admin", ADMIN_PASSWORD)
    first_cookie = user.cookies.get("lm_refresh", path="/api/v1/auth")
    assert first_cookie
    r = user.refresh()
    assert r.status_code == 200, r.text
    second_cookie = user.cookies.get("lm_refresh", path="/api/v1/auth")
    assert second_cookie and second_cookie != first_cookie
    assert user.get("/auth/me").status_code == 200
    # Rotated once more, the first token's successor is used too: no concurrent-refresh grace
    # (test_refresh_grace.py) for a copy of it.
    assert user.refresh().status_code == 200
    # A thief replays the first (already rotated) token.
    thief = api.client()
    thief.cookies.set("lm_refresh", first_cookie, path="/api/v1/auth")
    thief.cookies.set("lm_csrf", "t", path="/")
    r = thief.post("/auth/refresh", headers={"X-CSRF-Token": "t"})
    assert r.status_code == 401
    assert r.json()["type"].endswith("/refresh-reuse")
    # The whole family is dead: the legitimate refresh token and the access token too.
    assert user.refresh().status_code == 401
    assert user.get("/auth/me").status_code == 401
    audit = signin("admin", ADMIN_PASSWORD).get("/audit", params={"action": "auth.refresh"})
    results = [e["result"] for e in audit.json()["entries"]]
    assert "denied" in results and "ok" in results


def test_logout_ends_session(signin: Callable[..., SignedIn]) -> None:
    """After logout the access token and the refresh cookie stop working."""
    user = signin("admin", ADMIN_PASSWORD)
    cookie = user.cookies.get("lm_refresh", path="/api/v1/auth")
    r = user.post("/auth/logout", headers=user.csrf_headers())
    assert r.status_code == 200
    assert user.get("/auth/me").status_code == 401
    user.cookies.set("lm_refresh", cookie, path="/api/v1/auth")
    user.cookies.set("lm_csrf", "x", path="/")
    assert user.post("/auth/refresh", headers={"X-CSRF-Token": "x"}).status_code == 401


def test_csrf_on_cookie_path(api: ApiServer, signin: Callable[..., SignedIn]) -> None:
    """Refresh and logout refuse a missing/wrong CSRF header and a foreign Origin."""
    user = signin("admin", ADMIN_PASSWORD)
    no_header = user.post("/auth/refresh")
    wrong = user.post("/auth/refresh", headers={"X-CSRF-Token": "guess"})
    foreign = user.post(
        "/auth/refresh", headers={**user.csrf_headers(), "Origin": "https://evil.example"}
    )
    logout = user.post("/auth/logout", headers={"Origin": "https://evil.example"})
    for r in (no_header, wrong, foreign, logout):
        assert r.status_code == 403, r.text
        assert r.json()["type"].split("/")[-1] in {"csrf-token", "csrf-origin"}
    assert foreign.json()["type"].endswith("/csrf-origin")
    # The session survived all of it; the same-origin request with the header works.
    ok = user.post("/auth/refresh", headers={**user.csrf_headers(), "Origin": api.url})
    assert ok.status_code == 200, ok.text


def test_cookie_flags(start_api: Callable[..., ApiServer]) -> None:
    """By default the refresh cookie is HttpOnly, Secure, SameSite=Strict, Path=/api/v1/auth."""
    srv = start_api(api={"cookie_secure": True})
    r = srv.client().post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    refresh = next(c for c in r.headers.get_list("set-cookie") if c.startswith("lm_refresh="))
    flags = {p.strip().lower() for p in refresh.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/api/v1/auth"} <= flags
    assert "refresh" not in r.json() or "lm_refresh" not in r.text


def test_jwt_key_file_is_private(api: ApiServer) -> None:
    """The signing key is generated into the data directory with mode 0600."""
    key = api.settings.data_dir / "keys" / "api-jwt.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes().strip()) >= 64


def test_first_run_prints_random_admin_password(tmp_path: Path) -> None:
    """Without LOGMASTER_ADMIN_PASSWORD the first run prints a random password, once."""
    code = textwrap.dedent(f"""
        from logmaster.config import load_settings
        from logmaster.api.app import create_app
        create_app(load_settings(None, data_dir={str(tmp_path / "d")!r}))
        create_app(load_settings(None, data_dir={str(tmp_path / "d")!r}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "LOGMASTER_ADMIN_PASSWORD"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.count("created user 'admin'") == 1
    password = out.split("signing in):")[1].split()[0]
    assert len(password) >= 16
    from sqlalchemy import create_engine, text

    from logmaster.api.passwords import verify

    engine = create_engine(f"sqlite:///{tmp_path / 'd' / 'logmaster.db'}")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE username='admin'"))
        hashed = stored.scalar()
    engine.dispose()
    assert hashed.startswith("$argon2id$") and verify(hashed, password)
