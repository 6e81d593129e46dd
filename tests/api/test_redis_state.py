"""Redis mode of the API: sign-in counters and session revocation shared through Redis, and the
database taking over while Redis is down (a private redis-server, killed and restarted)."""

from __future__ import annotations

import logging
import secrets
import time

import jwt
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from logmaster import redisstate
from logmaster.api import throttle
from logmaster.api.models import AuthSession, Throttle, User
from redis_support import shared_redis_url, start_redis

LIMITS = {"account_max_failures": 3, "ip_max_failures": 50, "lockout_s": 600}


def _login(server, username, password):
    client = server.client()
    return client.post("/auth/login", json={"username": username, "password": password})


def _sid(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sid"])


def _user_id(server, username: str) -> int:
    with Session(server.engine) as s:
        return int(s.scalar(sa.select(User.id).where(User.username == username)))


def _fallbacks(use: str) -> float:
    return redisstate.FALLBACKS.labels(use)._value.get()


def test_failed_signins_count_in_redis_across_api_processes(start_api, make_user):
    """Failures on two API processes add up in Redis; the lock holds on both; the table stays
    empty; unlock clears Redis."""
    url = shared_redis_url()
    a = start_api(redis_url=url, api=LIMITS)
    b = start_api(data_dir=a.settings.data_dir, redis_url=url, api=LIMITS)
    name, password = make_user("viewer", username=f"rs{secrets.token_hex(4)}", server=a)
    assert _login(a, name, "wrong-1").status_code == 401
    assert _login(b, name, "wrong-2").status_code == 401
    third = _login(a, name, "wrong-3")
    assert third.status_code == 429 and third.json()["type"].endswith("account-locked")
    refused = _login(b, name, password)  # the right password, but the account is locked
    assert refused.status_code == 429, refused.text
    client = redis.Redis.from_url(url)
    ttl = client.pttl(f"logmaster:lock:user:{name}")
    assert 590_000 < ttl <= 600_000
    with Session(a.engine) as s:
        assert s.get(Throttle, throttle.user_key(name)) is None  # counted in Redis only
    with Session(a.engine, info=throttle.session_info(url)) as s:
        assert throttle.unlock(s, username=name) == 1
        s.commit()
    assert client.exists(f"logmaster:lock:user:{name}") == 0
    assert _login(b, name, password).status_code == 200


def test_counter_expires_after_the_window(start_api, make_user):
    """The failure counter lives failure_window_s: failures further apart never lock."""
    url = shared_redis_url()
    server = start_api(redis_url=url, api={**LIMITS, "failure_window_s": 1})
    name, password = make_user("viewer", username=f"rw{secrets.token_hex(4)}", server=server)
    for attempt in range(4):
        assert _login(server, name, f"wrong-{attempt}").status_code == 401
        time.sleep(1.1)
    assert _login(server, name, password).status_code == 200


def test_revoked_session_refused_at_once_through_redis(start_api, make_user, signin):
    """A revocation on one process lands in Redis (TTL = rest of the session's life) and the
    other process refuses the session's access token; a Redis entry alone is enough to refuse."""
    url = shared_redis_url()
    a = start_api(redis_url=url)
    b = start_api(data_dir=a.settings.data_dir, redis_url=url)
    name, password = make_user("viewer", username=f"rv{secrets.token_hex(4)}", server=a)
    viewer = signin(name, password, server=a)
    assert viewer.get("/auth/me").status_code == 200
    admin = signin("admin", a.admin_password, server=b)
    r = admin.post(f"/users/{_user_id(a, name)}/revoke-sessions")
    assert r.status_code == 200, r.text
    client = redis.Redis.from_url(url)
    key = f"logmaster:revoked:{_sid(viewer.token)}"
    assert client.get(key) == b"admin-revoke"
    assert 0 < client.pttl(key) <= a.settings.api.refresh_token_ttl_s * 1000
    assert viewer.get("/auth/me").status_code == 401

    # Logout publishes too (the ORM hook, not only the bulk update).
    other = signin(name, password, server=a)
    assert other.post("/auth/logout", headers=other.csrf_headers()).status_code == 200
    assert client.get(f"logmaster:revoked:{_sid(other.token)}") == b"logout"

    # Redis is consulted before the database: an entry there refuses a session the database
    # still holds open.
    third = signin(name, password, server=b)
    with Session(a.engine) as s:
        assert s.get(AuthSession, _sid(third.token)).revoked_at is None
    assert third.get("/auth/me").status_code == 200
    client.set(f"logmaster:revoked:{_sid(third.token)}", "test", px=60_000)
    refused = third.get("/auth/me")
    assert refused.status_code == 401 and refused.json()["type"].endswith("invalid-token")


def test_redis_down_signin_falls_back_to_the_database(
    start_api, make_user, signin, tmp_path, monkeypatch, caplog
):
    """Redis killed: sign-in still works and still locks (table counters), revocation still
    holds (database), the outage is logged once and every fallback counted; Redis back: used
    again, and a lock recorded in the table meanwhile still holds."""
    monkeypatch.setattr(redisstate, "RETRY_S", 0.5)
    private = start_redis(tmp_path)
    try:
        server = start_api(redis_url=private.url, api=LIMITS)
        name, password = make_user("viewer", username=f"rd{secrets.token_hex(4)}", server=server)
        assert _login(server, name, "wrong-0").status_code == 401  # counted in Redis
        private.stop()
        caplog.set_level(logging.WARNING, logger="logmaster.redisstate")
        before = _fallbacks("throttle")

        t0 = time.monotonic()
        viewer = signin(name, password, server=server)
        assert time.monotonic() - t0 < 5
        for attempt in range(2):
            assert _login(server, name, f"wrong-{attempt + 1}").status_code == 401
        assert _login(server, name, "wrong-3").status_code == 429  # 3 failures in the table
        assert _login(server, name, password).status_code == 429
        with Session(server.engine) as s:
            row = s.get(Throttle, throttle.user_key(name))
            assert row is not None and row.locked_until is not None
        assert _fallbacks("throttle") > before
        down = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
        assert len(down) == 1, [r.getMessage() for r in caplog.records]

        # Revocation while Redis is down: the database record alone refuses the session.
        admin = signin("admin", server.admin_password, server=server)
        assert admin.post(f"/users/{_user_id(server, name)}/revoke-sessions").status_code == 200
        assert viewer.get("/auth/me").status_code == 401

        private.start()
        time.sleep(0.6)  # past the retry pause
        assert _login(server, name, password).status_code == 429  # the table's lock holds
        assert any("Redis reachable again" in r.getMessage() for r in caplog.records)
        with Session(server.engine, info=throttle.session_info(private.url)) as s:
            throttle.unlock(s, username=name)
            s.commit()
        assert _login(server, name, password).status_code == 200
        assert not redisstate.shared(private.url).down
    finally:
        private.stop()
