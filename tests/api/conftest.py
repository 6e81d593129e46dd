"""Fixtures for API tests: a real uvicorn server on a free port, real httpx clients, users.

Typical use::

    def test_viewer_sees_only_granted(api, as_role, add_device, grant):
        add_device("gw1")
        viewer = as_role("viewer")                 # a new user with that role, signed in
        grant(user=viewer.username, device="gw1", actions=["view"])
        assert viewer.get("/permissions/me").json()["actions"]["view"] == ["gw1"]

- ``start_api(**settings_overrides)`` starts another server (own data directory unless
  ``data_dir=`` is given); ``api`` is one started with defaults. An :class:`ApiServer` has
  ``base`` (``http://127.0.0.1:PORT/api/v1``), ``settings``, ``app``, ``engine``,
  ``admin_password``.
- ``client`` is an anonymous ``httpx.Client`` on ``api.base``.
- ``admin`` is a :class:`SignedIn` client of the first-run admin.
- ``make_user(*roles, username=None, password=None, **fields)`` creates a user directly in the
  database and returns ``(username, password)``; ``signin(username, password)`` signs in
  through the API and returns a :class:`SignedIn` (an ``httpx.Client`` with the bearer token).
- ``pg_metadata_url`` is a fresh PostgreSQL database (dropped at the end) as a SQLAlchemy URL,
  for ``start_api(database_url=pg_metadata_url)``; ``pg_api`` is a server started that way.
- ``as_role("viewer")`` does both. ``add_device(slug, location="")`` registers a device;
  ``grant(user=|role=, device=|device_group=|location=, actions=[...])`` grants through the API.

Servers run in a thread of the test process (uvicorn ``Server``): the app, its engine and its
settings are at hand, and the server is stopped when the test ends. The refresh cookie is sent
over plain HTTP here because the fixtures set ``[api] cookie_secure = false``; one test checks
that the default is Secure.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from logmaster.api import accounts
from logmaster.api.app import create_app
from logmaster.collector.devices import add_device as register_device
from logmaster.config import Settings, load_settings
from support import free_port

ADMIN_PASSWORD = "Adm1n-Test-Passw0rd!"
PASSWORD = "Str0ng-Enough-Pass!"
_names = itertools.count(1)


@dataclass
class ApiServer:
    settings: Settings
    app: Any
    port: int
    admin_password: str
    server: uvicorn.Server
    thread: threading.Thread
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.url}/api/v1"

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.engine
        return engine

    def client(self, **kwargs: Any) -> httpx.Client:
        c = httpx.Client(base_url=self.base, timeout=30, **kwargs)
        self.clients.append(c)
        return c

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)
        # lifespan is off here, so the app's shutdown (which closes these) does not run.
        data = getattr(self.app.state, "logdata", None)
        if data is not None:
            data.index.close()
            data.read_engine.dispose()
        self.engine.dispose()


class SignedIn(httpx.Client):
    """An httpx client carrying a user's access token (and the refresh/CSRF cookies)."""

    username: str
    password: str
    token: str
    login: dict[str, Any]

    def csrf_headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.cookies.get("lm_csrf") or ""}

    def refresh(self) -> httpx.Response:
        """POST /auth/refresh with the CSRF header; on success the new token is used."""
        r = self.post("/auth/refresh", headers=self.csrf_headers())
        if r.status_code == 200:
            self.token = r.json()["access_token"]
            self.headers["Authorization"] = f"Bearer {self.token}"
        return r


def _serve(settings: Settings) -> ApiServer:
    app = create_app(settings)
    host, _, port = settings.api.listen.rpartition(":")
    # proxy_headers off as in `logmaster serve`: uvicorn would otherwise believe X-Forwarded-For
    # from 127.0.0.1 itself, and [api] trusted_proxies could not be tested.
    config = uvicorn.Config(
        app, host=host, port=int(port), log_level="warning", lifespan="off", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError(f"uvicorn did not start on {settings.api.listen}")
        time.sleep(0.02)
    return ApiServer(settings, app, int(port), ADMIN_PASSWORD, server, thread)


@pytest.fixture
def start_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., ApiServer]]:
    """Start API servers (each with its own data dir unless ``data_dir=`` is given)."""
    monkeypatch.setenv(accounts.ADMIN_PASSWORD_ENV, ADMIN_PASSWORD)
    started: list[ApiServer] = []

    def start(**overrides: Any) -> ApiServer:
        api_over = {"cookie_secure": False, **overrides.pop("api", {})}
        api_over.setdefault("listen", f"127.0.0.1:{free_port()}")
        data_dir = overrides.pop("data_dir", tmp_path / f"data{len(started) or ''}")
        settings = load_settings(None, data_dir=data_dir, api=api_over, **overrides)
        srv = _serve(settings)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def api(start_api: Callable[..., ApiServer]) -> ApiServer:
    return start_api()


@pytest.fixture
def client(api: ApiServer) -> httpx.Client:
    return api.client()


@pytest.fixture
def signin(api: ApiServer) -> Callable[..., SignedIn]:
    def sign_in(
        username: str, password: str, server: ApiServer | None = None, **extra: Any
    ) -> SignedIn:
        srv = server or api
        c = SignedIn(base_url=srv.base, timeout=30)
        srv.clients.append(c)
        r = c.post("/auth/login", json={"username": username, "password": password, **extra})
        assert r.status_code == 200, r.text
        c.username, c.password, c.login = username, password, r.json()
        c.token = c.login["access_token"]
        c.headers["Authorization"] = f"Bearer {c.token}"
        return c

    return sign_in


@pytest.fixture
def make_user(api: ApiServer) -> Callable[..., tuple[str, str]]:
    def make(
        *roles: str,
        username: str | None = None,
        password: str = PASSWORD,
        server: ApiServer | None = None,
        **fields: Any,
    ) -> tuple[str, str]:
        srv = server or api
        name = username or f"user{next(_names)}"
        with Session(srv.engine) as s:
            user = accounts.create_user(s, srv.settings.api, name, password, list(roles))
            for key, value in fields.items():
                setattr(user, key, value)
            s.commit()
        return name, password

    return make


@pytest.fixture
def admin(api: ApiServer, signin: Callable[..., SignedIn]) -> SignedIn:
    return signin("admin", ADMIN_PASSWORD)


@pytest.fixture
def as_role(
    make_user: Callable[..., tuple[str, str]], signin: Callable[..., SignedIn]
) -> Callable[..., SignedIn]:
    def make(*roles: str, **fields: Any) -> SignedIn:
        return signin(*make_user(*roles, **fields))

    return make


@pytest.fixture
def add_device(api: ApiServer) -> Callable[..., int]:
    """Register an approved device (sender 10.x.y.z derived from a counter); returns its id."""
    counter = itertools.count(1)

    def add(slug: str, location: str = "", server: ApiServer | None = None, **kw: Any) -> int:
        n = next(counter)
        dev = register_device(
            (server or api).engine,
            slug,
            kw.pop("sources", [f"10.0.{n // 250}.{n % 250 + 1}"]),
            location=location,
            timezone=kw.pop("timezone", "Europe/Istanbul"),
            **kw,
        )
        return dev.id

    return add


@pytest.fixture
def grant(admin: SignedIn) -> Callable[..., dict[str, Any]]:
    def give(**body: Any) -> dict[str, Any]:
        r = admin.post("/grants", json=body)
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    return give


PG_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_metadata_url() -> Iterator[str]:
    """A fresh PostgreSQL metadata database (SQLAlchemy URL), dropped WITH (FORCE) at the end."""
    name = f"lm_api_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_DSN} is required for the postgres tests: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(PG_DSN)
    host, port = info.get("host", "127.0.0.1"), info.get("port", "5432")
    user = info.get("user", "postgres")
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_api(start_api: Callable[..., ApiServer], pg_metadata_url: str) -> ApiServer:
    """An API server whose metadata (and index) live in a fresh PostgreSQL database."""
    return start_api(database_url=pg_metadata_url)
