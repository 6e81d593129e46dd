"""Brute force (per account, per address), idle timeout, source networks and time windows."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from conftest import PASSWORD, ApiServer, SignedIn
from logmaster.api.access import in_window
from logmaster.api.models import AuthSession


def _login(c: httpx.Client, username: str, password: str, **headers: str) -> httpx.Response:
    return c.post("/auth/login", json={"username": username, "password": password}, headers=headers)


def test_account_lockout(
    start_api: Callable[..., ApiServer], make_user: Callable[..., tuple[str, str]]
) -> None:
    """N failures lock the account (429, Retry-After, EN + TR); even the right password waits."""
    srv = start_api(api={"account_max_failures": 3, "lockout_s": 600})
    name, password = make_user("viewer", server=srv)
    c = srv.client()
    codes = [_login(c, name, "wrong").status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    r = _login(c, name, password)
    assert r.status_code == 429
    body = r.json()
    assert body["type"].endswith("/account-locked")
    assert "locked" in body["detail"] and "kilitli" in body["detail_tr"]
    assert 590 <= int(r.headers["retry-after"]) <= 600 and body["retry_after_s"] > 0
    # Another account from the same address is not affected (the address limit is higher).
    assert _login(c, "admin", srv.admin_password).status_code == 200
    # The admin unlocks it through the API; the right password works again.
    admin = srv.client()
    token = _login(admin, "admin", srv.admin_password).json()["access_token"]
    admin.headers["Authorization"] = f"Bearer {token}"
    users = admin.get("/users").json()
    uid = next(u["id"] for u in users if u["username"] == name)
    assert admin.post(f"/users/{uid}/unlock").json()["count"] == 1
    assert _login(c, name, password).status_code == 200
    actions = [
        (e["action"], e["result"])
        for e in admin.get("/audit", params={"actor": name, "limit": 50}).json()["entries"]
    ]
    assert ("auth.lockout", "denied") in actions and ("auth.login", "locked") in actions


def test_unlock_from_cli(
    start_api: Callable[..., ApiServer], make_user: Callable[..., tuple[str, str]]
) -> None:
    """`logmaster user unlock NAME` ends a lockout."""
    srv = start_api(api={"account_max_failures": 2})
    name, password = make_user("viewer", server=srv)
    c = srv.client()
    for _ in range(2):
        _login(c, name, "wrong")
    assert _login(c, name, password).status_code == 429
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "logmaster",
            "user",
            "unlock",
            name,
            "--data-dir",
            str(srv.settings.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"unlocked {name}" in done.stdout
    assert _login(c, name, password).status_code == 200


def test_address_block(start_api: Callable[..., ApiServer]) -> None:
    """Failures over many usernames from one address block the address."""
    srv = start_api(api={"ip_max_failures": 4, "account_max_failures": 10})
    c = srv.client()
    codes = [_login(c, f"guess{i}", "x").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]
    r = _login(c, "admin", srv.admin_password)
    assert r.status_code == 429 and r.json()["type"].endswith("/address-locked")
    assert "127.0.0.1" in r.json()["detail"] and "engelli" in r.json()["detail_tr"]


def test_idle_session_times_out(api: ApiServer, as_role: Callable[..., SignedIn]) -> None:
    """A session without requests for longer than idle_timeout_s is closed."""
    user = as_role("viewer")
    assert user.get("/auth/me").status_code == 200
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=api.settings.api.idle_timeout_s + 5)
    with api.engine.begin() as conn:
        conn.execute(sa.update(AuthSession).values(last_seen_at=past))
    r = user.get("/auth/me")
    assert r.status_code == 401 and r.json()["type"].endswith("/session-idle")
    assert "30" in r.json()["detail"] and "boşta" in r.json()["detail_tr"]
    assert user.refresh().status_code == 401  # refreshing does not revive it


def test_active_session_stays(api: ApiServer, as_role: Callable[..., SignedIn]) -> None:
    """Requests keep a session alive (last_seen moves)."""
    user = as_role("viewer")
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=api.settings.api.idle_timeout_s - 60)
    with api.engine.begin() as conn:
        conn.execute(sa.update(AuthSession).values(last_seen_at=recent))
    assert user.get("/auth/me").status_code == 200
    with api.engine.connect() as conn:
        seen = conn.execute(sa.select(sa.func.max(AuthSession.last_seen_at))).scalar_one()
    assert seen.replace(tzinfo=dt.UTC) > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)


def test_source_networks_at_signin_and_on_every_request(
    api: ApiServer,
    admin: SignedIn,
    make_user: Callable[..., tuple[str, str]],
    signin: Callable[..., SignedIn],
) -> None:
    """Allowed networks are checked at sign-in and again on each request."""
    name, password = make_user("viewer", allowed_networks=["10.9.0.0/16"])
    r = _login(api.client(), name, password)
    assert r.status_code == 403 and r.json()["type"].endswith("/source-network")
    assert "10.9.0.0/16" in r.json()["detail"] and "izinli" in r.json()["detail_tr"]
    # Without a trusted proxy, X-Forwarded-For is ignored: the client cannot pick its address.
    r = _login(api.client(), name, password, **{"X-Forwarded-For": "10.9.1.2"})
    assert r.status_code == 403
    uid = next(u["id"] for u in admin.get("/users").json() if u["username"] == name)
    assert (
        admin.patch(f"/users/{uid}", json={"allowed_networks": ["127.0.0.0/8"]}).status_code == 200
    )
    user = signin(name, password)
    assert user.get("/auth/me").status_code == 200
    admin.patch(f"/users/{uid}", json={"allowed_networks": ["192.0.2.0/24"]})
    r = user.get("/auth/me")
    assert r.status_code == 403 and r.json()["type"].endswith("/source-network")
    assert admin.patch(f"/users/{uid}", json={"allowed_networks": ["not-a-net"]}).status_code == 422


def test_forwarded_for_from_trusted_proxy(
    start_api: Callable[..., ApiServer], make_user: Callable[..., tuple[str, str]]
) -> None:
    """Behind a trusted proxy the client address is the X-Forwarded-For hop before it."""
    srv = start_api(api={"trusted_proxies": ["127.0.0.1/32"]})
    name, password = make_user("viewer", server=srv, allowed_networks=["10.9.0.0/16"])
    c = srv.client()
    assert _login(c, name, password).status_code == 403  # no header: the proxy itself
    ok = _login(c, name, password, **{"X-Forwarded-For": "203.0.113.9, 10.9.1.2"})
    assert ok.status_code == 200, ok.text
    spoofed = _login(c, name, password, **{"X-Forwarded-For": "10.9.1.2, 203.0.113.9"})
    assert spoofed.status_code == 403  # the nearest untrusted hop is 203.0.113.9


def test_time_windows(
    api: ApiServer,
    admin: SignedIn,
    make_user: Callable[..., tuple[str, str]],
    signin: Callable[..., SignedIn],
) -> None:
    """Weekday/hour windows in the user's timezone: refused outside, on every request."""
    zone = "Asia/Tokyo"
    now = dt.datetime.now(ZoneInfo(zone))
    today = now.weekday()
    open_now = [{"days": [today], "start": "00:00", "end": "24:00"}]
    closed_now = [{"days": [(today + 3) % 7], "start": "00:00", "end": "24:00"}]
    name, password = make_user("viewer", timezone=zone, allowed_windows=closed_now)
    r = _login(api.client(), name, password)
    assert r.status_code == 403 and r.json()["type"].endswith("/time-window")
    assert zone in r.json()["detail"]
    uid = next(u["id"] for u in admin.get("/users").json() if u["username"] == name)
    assert admin.patch(f"/users/{uid}", json={"allowed_windows": open_now}).status_code == 200
    user = signin(name, password)
    assert user.get("/auth/me").status_code == 200
    admin.patch(f"/users/{uid}", json={"allowed_windows": closed_now})
    assert user.get("/auth/me").status_code == 403
    bad = admin.patch(
        f"/users/{uid}", json={"allowed_windows": [{"days": [7], "start": "08:00", "end": "18:00"}]}
    )
    assert bad.status_code == 422


def test_window_rules() -> None:
    """Windows: start inclusive, end exclusive, overnight windows belong to their start day."""
    zone = "Europe/Istanbul"
    ist = ZoneInfo(zone)
    monday_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=ist)
    office = [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}]
    assert in_window(office, zone, monday_9)
    assert not in_window(office, zone, monday_9.replace(hour=18))
    assert in_window(office, zone, monday_9.replace(hour=8))
    assert not in_window(office, zone, monday_9 + dt.timedelta(days=5))  # Saturday
    night = [{"days": [4], "start": "22:00", "end": "06:00"}]  # Friday night
    friday_23 = dt.datetime(2026, 11, 27, 23, 0, tzinfo=ist)
    assert in_window(night, zone, friday_23)
    assert in_window(night, zone, friday_23 + dt.timedelta(hours=6))  # Saturday 05:00
    assert not in_window(night, zone, friday_23 - dt.timedelta(days=1))  # Thursday 23:00
    # The same instant in UTC is judged in the user's zone (Istanbul = UTC+3).
    assert in_window(office, zone, dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC))
    assert not in_window(office, zone, dt.datetime(2026, 11, 23, 4, 59, tzinfo=dt.UTC))
    assert in_window([], zone, friday_23)


def test_password_policy(admin: SignedIn) -> None:
    """Weak passwords are refused with what is missing, in English and Turkish."""
    for weak in ("short1!", "alllowercaseletters", "newuser-Password1"):
        r = admin.post(
            "/users", json={"username": "newuser", "password": weak, "roles": ["viewer"]}
        )
        assert r.status_code == 400, weak
        assert r.json()["detail"].startswith("password refused")
        assert r.json()["detail_tr"].startswith("parola kabul edilmedi")
    ok = admin.post(
        "/users", json={"username": "newuser", "password": PASSWORD, "roles": ["viewer"]}
    )
    assert ok.status_code == 201
