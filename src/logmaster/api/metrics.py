"""The API process's /metrics: request counts and latency per route, sign-in failures, tails.

Served like the other processes' counters, on a listen address of its own
(``[api] metrics_listen``, default 127.0.0.1:9517), never on the API's port: behind a reverse
proxy every request comes from the proxy's address, so a ``/metrics`` route could not tell
Prometheus on the loopback from a client on the internet.

One API process (``logmaster serve``, or the child of ``logmaster run``) is one uvicorn process
with one event loop: its counters are that process's, and a server running several API
processes gives each its own ``metrics_listen`` and lists each as a scrape target (PromQL's
``sum`` adds them up). No pre-forked workers share a port, so prometheus-client's
multiprocess mode (files in a shared directory) is not needed.

Labels stay few whatever the clients send: ``route`` is the route's template
(``/api/v1/events/{event_id}``), never the requested path; paths no route matches are
``unmatched``; ``method`` is one of :data:`METHODS` or ``other``; ``status`` is the class
(``2xx`` .. ``5xx``); sign-in failure ``reason`` is one of :data:`SIGNIN_REASONS`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from logmaster.endpoints import parse_endpoint
from logmaster.redisstate import FALLBACKS
from logmaster.redisstate import UP as REDIS_UP

API_REGISTRY = CollectorRegistry()

REQUESTS = Counter(
    "logmaster_api_requests",
    "HTTP requests answered, by route template, method and status class.",
    ["route", "method", "status"],
    registry=API_REGISTRY,
)
DURATION = Histogram(
    "logmaster_api_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["route"],
    # Searches and verifications may take tens of seconds; the default buckets stop at 10.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=API_REGISTRY,
)
SIGNIN_FAILURES = Counter(
    "logmaster_api_signin_failures",
    "Refused sign-ins (POST /auth/login), by reason.",
    ["reason"],
    registry=API_REGISTRY,
)
TAIL_SESSIONS = Gauge(
    "logmaster_tail_sessions",
    "Open live-tail WebSocket sessions of this API process.",
    registry=API_REGISTRY,
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# credentials: wrong user or password; mfa: wrong or reused second-factor code; locked: the
# account or the address is locked out; disabled: the account is disabled; network / window:
# outside the user's source networks or hours; ldap: the directory is unreachable or maps the
# user to no role.
SIGNIN_REASONS = ("credentials", "mfa", "locked", "disabled", "network", "window", "ldap")
UNMATCHED = "unmatched"

for _reason in SIGNIN_REASONS:  # every reason is a series from the start (0, not absent)
    SIGNIN_FAILURES.labels(_reason)


def signin_failed(reason: str) -> None:
    """Count a refused sign-in; ``reason`` is one of :data:`SIGNIN_REASONS`."""
    SIGNIN_FAILURES.labels(reason if reason in SIGNIN_REASONS else "credentials").inc()


def templates(routers: Iterable[object], prefix: str) -> dict[int, str]:
    """id(route) -> its full template, for the routes of ``routers`` included under ``prefix``.

    The router puts the route object it matched into the scope, and an included router's route
    knows only its own part of the path (``/events/{event_id}``), not the prefix it was included
    under. Keyed by identity: routes compare by value and are not hashable; the routers keep
    them alive as long as the app.
    """
    return {
        id(route): prefix + route.path
        for router in routers
        for route in getattr(router, "routes", [])
        if isinstance(getattr(route, "path", None), str)
    }


def _status_class(status: int) -> str:
    return f"{min(max(status // 100, 1), 5)}xx"


class RequestMetrics:
    """Pure ASGI middleware counting each HTTP request and timing it to its last body byte.

    The route is read after the app answered: the router puts the matched route into the
    scope (``scope["route"]``). WebSockets are left out: open tails have their own gauge.
    """

    def __init__(self, app: ASGIApp, full: Mapping[int, str] | None = None) -> None:
        self.app = app
        self.full = full or {}  # see templates()

    def route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        path = self.full.get(id(route), getattr(route, "path", None))
        return path if isinstance(path, str) else UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception before the answer started becomes a 500 outside

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = self.route(scope)
            method = str(scope.get("method", ""))
            REQUESTS.labels(
                route, method if method in METHODS else "other", _status_class(status)
            ).inc()
            DURATION.labels(route).observe(time.perf_counter() - start)


def serve_metrics(listen: str) -> int:
    """Serve /metrics of this API process on ``listen``; the port it listens on."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    # The Redis state (sign-in counters, revocations) of this process, with the API's own.
    for collector in (REQUESTS, DURATION, SIGNIN_FAILURES, TAIL_SESSIONS, FALLBACKS, REDIS_UP):
        registry.register(collector)
    ep = parse_endpoint(listen)
    server, _ = start_http_server(ep.port, ep.host, registry=registry)
    return int(server.server_port)
