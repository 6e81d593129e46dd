"""Running the API: uvicorn serving ``create_app(settings)`` on ``api.listen``.

Used by ``logmaster serve`` (in the foreground) and by ``logmaster run`` (a child process of the
supervisor). The server's own log goes through :mod:`logmaster.serverlog` like every other
process: uvicorn's access log is off (the audit trail records what users do; a request log would
also record the query strings of searches in a second, unprotected place).
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from logmaster import serverlog
from logmaster.config import Settings
from logmaster.endpoints import parse_endpoint

log = logging.getLogger(__name__)


def make_server(settings: Settings) -> uvicorn.Server:
    """A uvicorn server for the API of ``settings`` (not started)."""
    from logmaster.api.app import create_app

    ep = parse_endpoint(settings.api.listen)
    config = uvicorn.Config(
        create_app(settings),
        host=ep.host,
        port=ep.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # api.trusted_proxies decides whom to believe, not uvicorn
        # The sans-I/O protocol: the legacy "websockets" one warns of its deprecation at start.
        # It is what "auto" picks, so the tests' servers (tests/api/conftest.py) run it too.
        ws="websockets-sansio",
        ws_max_size=64 * 1024,
        lifespan="on",
        timeout_graceful_shutdown=5,
        # Longer than a client's or proxy's idle reuse (nginx upstream keepalive_timeout 60 s,
        # httpx 5 s): uvicorn's default 5 s closed idle connections just as clients reused
        # them, and the request on it failed (seen in bench/api_load.py --think).
        timeout_keep_alive=65,
    )
    return uvicorn.Server(config)


def run_server(settings: Settings) -> None:
    """Serve until SIGTERM / SIGINT (uvicorn installs the handlers), /metrics beside it."""
    server = make_server(settings)
    if settings.api.metrics_listen:
        from logmaster.api.metrics import serve_metrics

        try:
            serve_metrics(settings.api.metrics_listen)
        except OSError as exc:  # the API matters more than its counters: go on without them
            log.error(
                "Cannot serve the API's /metrics; serving the API anyway.",
                extra={"listen": settings.api.metrics_listen, "error": str(exc)},
            )
    log.info("API listening.", extra={"url": f"http://{settings.api.listen}/api/v1"})
    server.run()


def api_main(settings_json: dict[str, Any]) -> None:
    """Entry point of the API child process of ``logmaster run``."""
    settings = Settings.model_validate(settings_json)
    serverlog.setup(settings.log_level, settings.log_format)
    run_server(settings)
