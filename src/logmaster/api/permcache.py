"""What an API process remembers of permissions: users' roles and device scopes, per generation.

Every request needs the caller's roles and, for log data, the devices they may see. Working
that out reads the user's roles, every grant, group and location (on a 50-user load it was a
third of the API's time). The answer only changes when one of those tables changes, and then
triggers move ``permission_state.generation`` in the same transaction (migration 0007).

So each request reads the generation together with its session row (one query it makes
anyway), and this cache answers for that generation: a new generation empties it. A change
made anywhere - another API process or node, the CLI, a collector adding a device - is
therefore seen on the next request, exactly as when everything was read each time.

A request that read an older generation than the cache holds (it started just before a
change) loads what it needs without storing it, so older facts never land under a newer key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

# Bounds memory if there are very many users; past it, answers are computed, not kept.
MAX_ENTRIES = 20_000


class PermissionCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = -1
        self._values: dict[Hashable, Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, generation: int | None, key: Hashable, load: Callable[[], T]) -> T:
        """The value of ``key`` at ``generation``, from ``load()`` the first time."""
        if generation is None:  # no generation (a database before migration 0007)
            return load()
        with self._lock:
            if generation > self._generation:
                self._values.clear()
                self._generation = generation
            if generation == self._generation and key in self._values:
                self.hits += 1
                value: T = self._values[key]
                return value
            self.misses += 1
        value = load()
        with self._lock:
            if generation == self._generation and len(self._values) < MAX_ENTRIES:
                self._values[key] = value
        return value
