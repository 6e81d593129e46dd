"""The FastAPI application: ``create_app(settings)``.

Everything lives under ``/api/v1``; the schema is ``/api/v1/openapi.json`` and the docs
``/api/v1/docs``. Operation ids are the route functions' names (``list_devices``,
``search_events``), so the console's generated client reads like the code. Each router of
:data:`logmaster.api.routes.ROUTERS` is included as is; errors of every kind are problem details
(:mod:`logmaster.api.problems`).

``app.state`` holds what routes share: ``settings``, ``engine`` (see :func:`api_engine`),
``sessions`` (a sessionmaker), ``signer`` (JWT), ``trusted_proxies`` and ``mfa_key``.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from logmaster import __version__, cluster
from logmaster.api import accounts, console, metrics, mfa, problems, throttle
from logmaster.api.access import parse_networks
from logmaster.api.permcache import PermissionCache
from logmaster.api.routes import ROUTERS
from logmaster.api.tokens import Signer, load_or_create_key
from logmaster.config import Settings
from logmaster.db import make_engine, migrate, sessions

PREFIX = "/api/v1"


def api_engine(url: str) -> Engine:
    """The metadata engine of the API.

    On SQLite, pysqlite opens a transaction only before the first INSERT/UPDATE/DELETE, so a
    request's reads never hold a WAL snapshot that a later write would have to upgrade (that
    fails at once with "database is locked"); writers queue on the busy timeout instead. The
    catch: a request must not write through two connections at once (the second waits for the
    first), which is why :class:`logmaster.api.deps.Auditor` writes through the request's own
    session.
    """
    return make_engine(url)


def operation_id(route: APIRoute) -> str:
    return route.name


def docs_page(openapi_url: str) -> HTMLResponse:
    """FastAPI's Swagger UI page, with a Content-Security-Policy.

    The page loads Swagger UI from its CDN (reachable or not from the operator's browser) and
    starts it with one inline script, allowed by its SHA-256 alone: a script injected into the
    page (the schema carries user-supplied texts only as data) would not run.
    """
    html = bytes(get_swagger_ui_html(openapi_url=openapi_url, title="LogMaster API").body)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in re.findall(rb"<script>(.*?)</script>", html, re.S)
    )
    cdn = "https://cdn.jsdelivr.net"
    csp = "; ".join(
        (
            "default-src 'none'",
            f"script-src {cdn} {hashes}",
            f"style-src {cdn} 'unsafe-inline'",
            "img-src 'self' data: https://fastapi.tiangolo.com",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": csp})


class SecurityHeaders:
    """Pure ASGI middleware (it neither buffers nor breaks streamed bodies and WebSockets).

    Every HTTP response says ``X-Content-Type-Options: nosniff``: a browser must never guess HTML
    in JSON that carries syslog text. Answers under ``/api/v1`` carry log data, evidence or
    account details and are never worth caching, so they get ``Cache-Control: no-store`` unless
    the route chose its own cache policy. The console's assets keep theirs (immutable).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith(PREFIX + "/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if api:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings``: migrates the database and creates ``admin`` on first run."""
    settings.data_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    migrate(settings.db_url)
    engine = api_engine(settings.db_url)
    accounts.ensure_admin(engine, settings.api)
    app = FastAPI(
        title="LogMaster API",
        version=__version__,
        description="Syslog archive, search and Law 5651 compliance. Errors are RFC 9457 "
        "problem details (application/problem+json) with an English `detail` and a Turkish "
        "`detail_tr`.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,  # served below, with a Content-Security-Policy
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions(engine)
    app.state.permissions = PermissionCache()
    # Sign-in counters and session revocation reach Redis through the sessions (when set).
    app.state.sessions.configure(info=throttle.session_info(settings.redis_url))
    # Several API nodes share one key pair ([cluster] shared_dir): a token of one is valid on all.
    keys_home = settings.cluster.shared_dir or settings.data_dir
    app.state.signer = Signer(settings, key=load_or_create_key(keys_home))
    app.state.trusted_proxies = parse_networks(settings.api.trusted_proxies)
    app.state.mfa_key = mfa.load_or_create_key(keys_home)
    cluster.register(engine, settings, app.state.signer.key)
    app.add_api_route(
        f"{PREFIX}/docs", lambda: docs_page(f"{PREFIX}/openapi.json"), include_in_schema=False
    )
    problems.install(app)
    app.add_middleware(SecurityHeaders)
    # Outermost: counts and times every answer, by route template.
    app.add_middleware(metrics.RequestMetrics, full=metrics.templates(ROUTERS, PREFIX))
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX, responses=problems.PROBLEM_RESPONSES)
    console.mount_console(app, settings)  # last: its catch-all must not shadow API routes
    return app
