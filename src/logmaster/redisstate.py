"""Redis for the state that several API processes share: sign-in counters and revoked sessions.

Only with ``redis_url`` set; without it the embedded equivalents (the ``throttle`` table, the
``auth_sessions`` rows) are all there is. The database stays the record either way: Redis holds
short-lived, rebuildable state only, so losing it loses nothing that matters.

:func:`shared` gives one :class:`RedisState` per URL and process (redis-py's client is
thread-safe and pools its connections). Every use goes through :meth:`RedisState.call`, which
raises :class:`RedisUnavailable` when Redis cannot be reached; callers then fall back to the
database. A failure opens a short circuit (``RETRY_S``): for that long Redis is not tried at all,
so an unreachable Redis costs one connect timeout every few seconds, not one per request. The
outage is logged once when it starts and once when Redis answers again; every fallback is
counted in ``logmaster_redis_fallbacks_total{use}`` (registry ``REDIS_REGISTRY``; a process adds
it to its ``/metrics`` with ``registry.register(REDIS_METRICS)``), and ``logmaster_redis_up``
says whether the last attempt reached it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "logmaster:"
# Seconds an unreachable Redis is left alone before it is tried again.
RETRY_S = 5.0
# Requests wait at most this long for Redis (a healthy one on the LAN answers in well under 1 ms).
TIMEOUT_S = 0.5

REDIS_REGISTRY = CollectorRegistry()
FALLBACKS = Counter(
    "logmaster_redis_fallbacks",
    "Operations that used the database because Redis could not be reached, by use.",
    ["use"],
    registry=REDIS_REGISTRY,
)
UP = Gauge(
    "logmaster_redis_up",
    "1 when the last Redis operation of this process succeeded, 0 when Redis was unreachable.",
    registry=REDIS_REGISTRY,
)
REDIS_METRICS = REDIS_REGISTRY


class RedisUnavailable(Exception):  # noqa: N818 (a state, not a programming error)
    """Redis could not be reached (or is being left alone after a recent failure)."""


class RedisState:
    """One Redis server (a URL), with the circuit and the once-per-outage log."""

    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self.client: Any = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._down = False

    @property
    def down(self) -> bool:
        """True while the last attempt failed (until Redis answers again)."""
        return self._down

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def call(self, use: str, operation: Callable[[Any], T]) -> T:
        """``operation(client)``; raises :class:`RedisUnavailable` (counted under ``use``)."""
        if self._down and time.monotonic() < self._retry_at:
            FALLBACKS.labels(use).inc()
            raise RedisUnavailable(f"Redis at {self._where()} is unreachable")
        try:
            result = operation(self.client)
        except self._errors as exc:
            self._failed(exc)
            FALLBACKS.labels(use).inc()
            raise RedisUnavailable(f"Redis at {self._where()} is unreachable: {exc}") from exc
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    log.warning("Redis reachable again.", extra={"redis": self._where()})
        UP.set(1)
        return result

    def _failed(self, exc: BaseException) -> None:
        UP.set(0)
        with self._lock:
            self._retry_at = time.monotonic() + RETRY_S
            if self._down:
                return
            self._down = True
        log.error(
            "Redis unreachable; sign-in counters and session revocation fall back to the "
            "database until it answers again.",
            extra={"redis": self._where(), "error": str(exc)},
        )

    def _where(self) -> str:
        from urllib.parse import urlsplit

        # The URL may carry a password: name only host, port and database.
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"

    def close(self) -> None:
        self.client.close()


@functools.cache
def shared(url: str) -> RedisState:
    """The process's :class:`RedisState` for ``url``."""
    return RedisState(url)


def state_for(url: str | None) -> RedisState | None:
    """The shared state of ``url``, or None when Redis is not configured."""
    return shared(url) if url else None
