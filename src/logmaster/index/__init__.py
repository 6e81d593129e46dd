"""The index: the searchable copy of the archive, rebuildable from it at any time.

``fields`` names the columns, ``query`` parses what operators type, ``sql`` turns it into SQL,
``sessions`` derives NAT/DHCP/hotspot intervals, ``indexer`` tails the archive. Backends, one
module each, registered with one line below; ``tests/index/test_contract.py`` runs the same
tests against every one of them.
"""

from __future__ import annotations

import importlib

from logmaster.config import Settings
from logmaster.index.base import IndexBackend

BACKENDS: dict[str, str] = {
    "sqlite": "logmaster.index.sqlite:SqliteIndex",
    "postgres": "logmaster.index.postgres:PostgresIndex",
}


def backend_class(name: str) -> type[IndexBackend]:
    module, _, cls = BACKENDS[name].partition(":")
    found: type[IndexBackend] = getattr(importlib.import_module(module), cls)
    return found


def open_index(settings: Settings) -> IndexBackend:
    """The index backend the settings choose."""
    return backend_class(settings.index.backend).from_settings(settings)
