"""TOTP second factor: enrolment with QR code, sign-in with codes, replay, recovery codes,
MFA required per role."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import httpx
import pyotp

from conftest import ApiServer, SignedIn


def _enrol(user: SignedIn) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol and confirm; ``user.mfa_first_code`` is the code that confirmed."""
    r = user.post("/auth/mfa/enrol")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["qr_svg"].lstrip().startswith("<svg") and "</svg>" in body["qr_svg"]
    assert body["otpauth_uri"].startswith("otpauth://totp/LogMaster:")
    totp = pyotp.TOTP(body["secret"])
    user.mfa_first_code = totp.now()  # type: ignore[attr-defined]
    r = user.post("/auth/mfa/confirm", json={"code": user.mfa_first_code})
    assert r.status_code == 200, r.text
    codes: list[str] = r.json()["recovery_codes"]
    return totp, codes


def _login(api: ApiServer, user: SignedIn, **extra: str) -> httpx.Response:
    return api.client().post(
        "/auth/login", json={"username": user.username, "password": user.password, **extra}
    )


def test_enrol_and_sign_in_with_code(api: ApiServer, as_role: Callable[..., SignedIn]) -> None:
    """After enrolment the password alone is not enough; a fresh code is; a used one is not."""
    user = as_role("viewer")
    totp, codes = _enrol(user)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert user.get("/auth/me").json()["mfa_enabled"] is True
    r = _login(api, user)
    assert r.status_code == 401 and r.json()["type"].endswith("/mfa-required")
    assert "kod" in r.json()["detail_tr"]
    near = {totp.at(int(time.time()) + d) for d in (-30, 0, 30)}
    wrong = _login(
        api,
        user,
        totp_code=next(c for c in ("000000", "111111", "222222", "333333") if c not in near),
    )
    assert wrong.status_code == 401 and wrong.json()["type"].endswith("/mfa-invalid")
    # The code used to confirm enrolment cannot be replayed; the next step's code works once.
    replay = _login(api, user, totp_code=user.mfa_first_code)  # type: ignore[attr-defined]
    assert replay.status_code == 401
    following = totp.at(int(time.time()) + 30)
    assert _login(api, user, totp_code=following).status_code == 200
    assert _login(api, user, totp_code=following).status_code == 401


def test_recovery_code_works_once(api: ApiServer, as_role: Callable[..., SignedIn]) -> None:
    """A recovery code signs in once, then never again."""
    user = as_role("viewer")
    _totp, codes = _enrol(user)
    assert _login(api, user, recovery_code=codes[0]).status_code == 200
    assert _login(api, user, recovery_code=codes[0]).status_code == 401
    assert _login(api, user, recovery_code=codes[1].upper()).status_code == 200


def test_secret_and_codes_are_not_stored_in_clear(
    api: ApiServer, as_role: Callable[..., SignedIn]
) -> None:
    """The TOTP secret is encrypted and recovery codes are argon2id hashes."""
    user = as_role("viewer")
    totp, codes = _enrol(user)
    dump = "\n".join(sqlite3.connect(api.settings.data_dir / "logmaster.db").iterdump())
    assert totp.secret not in dump
    assert not any(c in dump for c in codes)
    assert dump.count("$argon2id$") >= 10


def test_role_requires_mfa(
    api: ApiServer, admin: SignedIn, as_role: Callable[..., SignedIn]
) -> None:
    """When a role requires MFA, a member without it may only enrol until they have."""
    assert admin.patch("/roles/security_analyst", json={"mfa_required": True}).status_code == 200
    user = as_role("security_analyst")
    assert user.login["mfa_enrolment_required"] is True
    r = user.get("/permissions/me")
    assert r.status_code == 403 and r.json()["type"].endswith("/mfa-enrolment-required")
    totp, _codes = _enrol(user)
    assert user.get("/permissions/me").status_code == 200
    # Turning it off is refused while the role requires it.
    r = user.post("/auth/mfa/disable", json={"code": totp.at(int(time.time()) + 30)})
    assert r.status_code == 409


def test_settings_require_mfa_for_admin(
    start_api: Callable[..., ApiServer], signin: Callable[..., SignedIn]
) -> None:
    """[api] mfa_required_roles = ["admin"] makes the admin enrol first."""
    srv = start_api(api={"mfa_required_roles": ["admin"]})
    admin = signin("admin", srv.admin_password, server=srv)
    assert admin.login["mfa_enrolment_required"] is True
    assert admin.get("/users").status_code == 403


def test_admin_resets_lost_second_factor(
    api: ApiServer, admin: SignedIn, as_role: Callable[..., SignedIn]
) -> None:
    """An admin removes a user's second factor; the password alone works again."""
    user = as_role("viewer")
    _enrol(user)
    assert _login(api, user).status_code == 401
    assert admin.post(f"/users/{user.login['user']['id']}/mfa/reset").status_code == 200
    assert _login(api, user).status_code == 200
    entries = admin.get("/audit", params={"action": "user.mfa-reset"}).json()["entries"]
    assert entries and entries[0]["target"] == f"user:{user.username}"
