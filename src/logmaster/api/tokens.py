"""Access tokens (JWT) and refresh tokens.

Access tokens are JWTs signed with HS256 and a 512-bit secret generated on first use into
``<data_dir>/keys/api-jwt.key`` (mode 0600; never in the repository or the TOML). HS256 because
the API is both the only issuer and the only verifier: an asymmetric key (EdDSA) would only pay
off if other services verified tokens, and the allow-list of exactly one algorithm closes the
classic confusions (``alg: none``, RS/HS key confusion). Claims: ``iss``, ``aud``, ``sub`` (user
id), ``sid`` (the sign-in session), ``iat``, ``nbf``, ``exp``, ``jti``; all are required.

Refresh tokens are 256-bit random strings; only their SHA-256 is stored (``refresh_tokens``).
Each use rotates: the used token is marked, a new one of the same family (session) is issued;
presenting a used token again revokes the whole session (the family), since either the client or
a thief holds a copy it should not have. Except within ``[api] refresh_grace_s`` of the
rotation, while its successor is unused: two tabs refreshing at once both get that successor
(:func:`successor_refresh_token`).

With ``redis_url`` set, :meth:`Signer.check` also refuses the access token of a session that
Redis lists as revoked (:mod:`logmaster.api.revocation`), before any database read.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from logmaster.api import revocation
from logmaster.config import Settings
from logmaster.redisstate import state_for

ALGORITHMS = ["HS256"]
KEY_FILE = "api-jwt.key"


def load_or_create_key(data_dir: Path) -> bytes:
    """The signing secret, created (0600, exclusive create) when missing."""
    keys = data_dir / "keys"
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes().strip()
        if len(secret) < 64:
            raise ValueError(
                f"{path} holds fewer than 64 characters: delete it to make a new one"
            ) from None
        return secret
    secret = secrets.token_hex(64).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(secret + b"\n")
    return secret


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: str
    issued_at: dt.datetime
    expires_at: dt.datetime


class Signer:
    """Issues and checks the access tokens of one API."""

    def __init__(self, settings: Settings, key: bytes | None = None) -> None:
        self.key = key if key is not None else load_or_create_key(settings.data_dir)
        self.issuer = settings.api.jwt_issuer
        self.audience = settings.api.jwt_audience
        self.ttl = dt.timedelta(seconds=settings.api.access_token_ttl_s)
        self.redis = state_for(settings.redis_url)

    def issue(self, user_id: int, session_id: str, username: str) -> tuple[str, dt.datetime]:
        now = dt.datetime.now(dt.UTC)
        expires = now + self.ttl
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "name": username,
            "sid": session_id,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHMS[0]), expires

    def check(self, token: str) -> AccessClaims:
        """The claims of a valid token; raises ``jwt.InvalidTokenError`` otherwise."""
        claims = jwt.decode(
            token,
            self.key,
            algorithms=ALGORITHMS,
            audience=self.audience,
            issuer=self.issuer,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "sid", "jti"]},
            leeway=5,
        )
        sub, sid = claims["sub"], claims["sid"]
        if not isinstance(sub, str) or not sub.isdigit() or not isinstance(sid, str):
            raise jwt.InvalidTokenError("malformed sub or sid")
        if self.redis is not None and revocation.is_revoked(self.redis, sid):
            raise jwt.InvalidTokenError("the session was revoked")
        return AccessClaims(
            int(sub),
            sid,
            dt.datetime.fromtimestamp(claims["iat"], dt.UTC),
            dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
        )


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def new_refresh_token() -> tuple[str, str]:
    """(token for the client, SHA-256 hex to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def successor_refresh_token(key: bytes, token: str) -> tuple[str, str]:
    """The refresh token that replaces ``token`` when it rotates: (token, SHA-256 hex).

    Derived, not drawn: HMAC-SHA256 under the API's signing secret, so the rotation can hand
    the same successor out again to a second tab that refreshed with ``token`` at the same
    moment (``[api] refresh_grace_s``) without ever storing a token in the clear. Without the
    secret the successor is as unpredictable as a random one.
    """
    mac = hmac.new(key, b"logmaster-refresh-successor\n" + token.encode(), hashlib.sha256)
    successor = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
    return successor, hash_refresh_token(successor)
