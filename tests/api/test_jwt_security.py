"""Access tokens: only HS256 with our key, our audience and issuer, unexpired, live session."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from conftest import ApiServer, SignedIn


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(admin: SignedIn) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(admin.token, options={"verify_signature": False})
    return claims


def _key(api: ApiServer) -> bytes:
    return (api.settings.data_dir / "keys" / "api-jwt.key").read_bytes().strip()


def _call(api: ApiServer, token: str) -> httpx.Response:
    return api.client().get("/auth/me", headers={"Authorization": f"Bearer {token}"})


def _refused(r: httpx.Response, kind: str = "invalid-token") -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/" + kind)
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_genuine_token_works(api: ApiServer, admin: SignedIn) -> None:
    """The control: the token the API issued is accepted (so the refusals below mean it)."""
    assert _call(api, admin.token).status_code == 200
    header = jwt.get_unverified_header(admin.token)
    assert header["alg"] == "HS256"
    claims = _claims(admin)
    assert claims["aud"] == "logmaster-api" and claims["iss"] == "logmaster"
    assert claims["exp"] - claims["iat"] == 900


def test_alg_none_is_refused(api: ApiServer, admin: SignedIn) -> None:
    """An unsigned token (alg none) with valid claims is refused."""
    claims = _claims(admin)
    for alg in ("none", "None", "NONE"):
        token = (
            _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
            + "."
            + _b64(json.dumps(claims).encode())
            + "."
        )
        _refused(_call(api, token))


def test_wrong_key_is_refused(api: ApiServer, admin: SignedIn) -> None:
    """A token signed with another key is refused."""
    _refused(_call(api, jwt.encode(_claims(admin), b"x" * 64, algorithm="HS256")))


def test_other_algorithm_with_right_key_is_refused(api: ApiServer, admin: SignedIn) -> None:
    """Only HS256 is allowed, even with the right key (HS512 here)."""
    _refused(_call(api, jwt.encode(_claims(admin), _key(api), algorithm="HS512")))


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"exp": 0, "iat": 0, "nbf": 0}, "token-expired"),
        ({"aud": "someone-else"}, "invalid-token"),
        ({"iss": "evil"}, "invalid-token"),
        ({"sid": None}, "invalid-token"),
        ({"sub": "1; drop"}, "invalid-token"),
        ({"nbf": 4102444800}, "invalid-token"),  # not before 2100
    ],
)
def test_bad_claims_are_refused(
    api: ApiServer, admin: SignedIn, change: dict[str, Any], kind: str
) -> None:
    """Expired, foreign audience or issuer, missing/garbled claims: refused, even when signed."""
    claims = {**_claims(admin), **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    if change.get("exp") == 0:
        past = int((dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).timestamp())
        claims.update(exp=past, iat=past - 900, nbf=past - 900)
    _refused(_call(api, jwt.encode(claims, _key(api), algorithm="HS256")), kind)


def test_tampered_payload_is_refused(
    api: ApiServer, admin: SignedIn, as_role: Callable[..., SignedIn]
) -> None:
    """Changing the user inside a genuine token breaks its signature."""
    viewer = as_role("viewer")
    head, _payload, sig = viewer.token.split(".")
    claims = {**_claims(viewer), "sub": str(_claims(admin)["sub"])}
    forged = f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
    _refused(_call(api, forged))


def test_token_of_another_users_session_is_refused(
    api: ApiServer, admin: SignedIn, as_role: Callable[..., SignedIn]
) -> None:
    """A signed token whose session belongs to someone else is refused (sub and sid must match)."""
    viewer = as_role("viewer")
    claims = {**_claims(viewer), "sub": str(_claims(admin)["sub"])}
    r = _call(api, jwt.encode(claims, _key(api), algorithm="HS256"))
    _refused(r, "session-ended")


def test_token_of_revoked_session_is_refused(
    api: ApiServer, admin: SignedIn, as_role: Callable[..., SignedIn]
) -> None:
    """After an admin revokes a user's sessions their unexpired access token stops working."""
    viewer = as_role("viewer")
    assert viewer.get("/auth/me").status_code == 200
    uid = viewer.login["user"]["id"]
    assert admin.post(f"/users/{uid}/revoke-sessions").json()["count"] == 1
    _refused(viewer.get("/auth/me"), "session-ended")


def test_garbage_and_missing_tokens(api: ApiServer) -> None:
    """No header, another scheme, or garbage: 401 problems."""
    c = api.client()
    r = c.get("/auth/me")
    assert r.status_code == 401 and r.json()["type"].endswith("/not-signed-in")
    assert c.get("/auth/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}).status_code == 401
    _refused(_call(api, "not.a.jwt"))
