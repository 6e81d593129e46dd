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

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine

from logmaster import __version__
from logmaster.api import accounts, console, mfa, problems
from logmaster.api.access import parse_networks
from logmaster.api.routes import ROUTERS
from logmaster.api.tokens import Signer
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
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions(engine)
    app.state.signer = Signer(settings)
    app.state.trusted_proxies = parse_networks(settings.api.trusted_proxies)
    app.state.mfa_key = mfa.load_or_create_key(settings.data_dir)
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX, responses=problems.PROBLEM_RESPONSES)
    console.mount_console(app, settings)  # last: its catch-all must not shadow API routes
    return app
