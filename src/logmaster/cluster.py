"""Several nodes on one PostgreSQL and one Redis: archive file references and the node registry.

Each node has its own collector, archive and sealer; the metadata database and the postgres
index are shared. Two archives can hold a file with the same archive-relative path (a device
that sent to both nodes), so in a shared index a file is named ``NODE:device/YYYY/MM/DD.log``:
the checkpoint key, the event's ``log.file.path`` and the session's evidence reference. With
the SQLite index (one node) references stay plain, and a plain reference in a shared index (a
node indexed before it knew its name) means the node that reads it.

The ``nodes`` table says where each node's API answers (``[cluster] api_url``), so a request
that needs another node's archive is forwarded there (``api/forward.py``), and which signing key
it uses (a fingerprint), so that a node whose key differs is named in the log.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from logmaster.db import Device, Node, sessions, utcnow

if TYPE_CHECKING:
    import datetime as dt

    from sqlalchemy.engine import Engine

    from logmaster.config import Settings
    from logmaster.index.base import IndexBackend

log = logging.getLogger(__name__)

SEP = ":"


def index_node(settings: Settings) -> str | None:
    """The node name that qualifies this node's file references, or None (index not shared)."""
    return settings.cluster.node if settings.index.backend == "postgres" else None


def qualify(node: str | None, rel: str) -> str:
    """The index's reference to archive file ``rel`` of ``node``."""
    return rel if node is None else f"{node}{SEP}{rel}"


def split_ref(ref: str) -> tuple[str | None, str]:
    """(node or None, archive-relative path) of a file reference.

    Device slugs and node names never contain ':', so the first one separates them.
    """
    node, sep, rel = ref.partition(SEP)
    return (node, rel) if sep else (None, ref)


def local_rel(ref: str, node: str) -> str | None:
    """The archive-relative path when ``ref`` names a file of ``node`` (or no node), else None."""
    held, rel = split_ref(ref)
    return rel if held in (None, node) else None


def local_stats(
    stats: dict[str, tuple[int, int]] | None, node: str
) -> dict[str, tuple[int, int]] | None:
    """Per-file index figures keyed by this node's archive-relative paths (others dropped)."""
    if stats is None:
        return None
    out: dict[str, tuple[int, int]] = {}
    for ref, (lines, failures) in stats.items():
        rel = local_rel(ref, node)
        if rel is not None:
            # An upgraded node has a plain and a qualified checkpoint for the same file.
            before = out.get(rel, (0, 0))
            out[rel] = (before[0] + lines, before[1] + failures)
    return out


def drop_indexed(backend: IndexBackend, settings: Settings, first: dt.date, last: dt.date) -> None:
    """Forget the index of this node's archive days first..last (reindex, retention).

    In an index shared by several nodes only this node's files go (the others' events of the
    same days stay); otherwise whole days, as before.
    """
    node = index_node(settings)
    drop_node_days = getattr(backend, "drop_node_days", None)
    if node is not None and drop_node_days is not None:
        drop_node_days(first, last, node)
    else:
        backend.drop_days(first, last)


def key_id(key: bytes) -> str:
    """A fingerprint of an API signing key that reveals nothing about it."""
    return hashlib.sha256(b"logmaster-api-key-id\n" + key).hexdigest()[:32]


def register(engine: Engine, settings: Settings, signing_key: bytes) -> None:
    """Record this node (its API URL and key fingerprint); warn about nodes with another key."""
    me = settings.cluster.node
    kid = key_id(signing_key)
    now = utcnow()
    with sessions(engine)() as s, s.begin():
        row = s.get(Node, me)
        if row is None:
            s.add(Node(name=me, api_url=settings.cluster.api_url, key_id=kid, started_at=now))
        else:
            row.api_url = settings.cluster.api_url
            row.key_id = kid
            row.started_at = row.seen_at = now
        others = s.execute(select(Node.name, Node.key_id).where(Node.name != me)).all()
    for name, other in others:
        if other is not None and other != kid:
            log.error(
                "Another node signs API tokens with a different key: sign-ins on one node "
                "are refused by the other. Give every API node the same keys/api-jwt.key "
                "([cluster] shared_dir).",
                extra={"node": me, "other": name},
            )


def holder(engine: Engine, slug: str) -> str | None:
    """The node holding ``slug``'s archive (None: not recorded)."""
    with sessions(engine)() as s:
        node: str | None = s.scalar(select(Device.node).where(Device.slug == slug))
    return node


def api_url(engine: Engine, node: str) -> str | None:
    """Where ``node``'s API answers, as it registered it (None: unknown or not set)."""
    with sessions(engine)() as s:
        url: str | None = s.scalar(select(Node.api_url).where(Node.name == node))
    return url
