"""Requests that need another node's archive: forwarded to that node's API, or a clear problem.

Every node shares the database and the index, so any node finds an event or a device; only the
raw archive lives on one node (``cluster.py``). A route that reads it calls :func:`elsewhere`
with the node holding the file or device: ``None`` means "here, go on"; otherwise the caller
returns the answer of the holder's API to the same path and query, asked with the caller's own
bearer token (the nodes share the signing key, sessions and grants, so the holder checks the
same permissions and writes the same audit entry). A node without a registered ``api_url``, or
one that does not answer, gives a 409 problem naming the node. A forwarded request is never
forwarded again (``X-LogMaster-Forwarded``), so two nodes that disagree cannot loop.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

from fastapi import Request, Response

from logmaster import cluster
from logmaster.api.logdata import LogData
from logmaster.api.problems import ProblemError

log = logging.getLogger(__name__)

HEADER = "X-LogMaster-Forwarded"
TIMEOUT_S = 30.0


def holder_of_ref(data: LogData, ref: str) -> str | None:
    """The node holding the archive file ``ref`` when it is not this node, else None."""
    node, _rel = cluster.split_ref(ref)
    return node if node not in (None, data.settings.cluster.node) else None


def holder_of_device(data: LogData, slug: str) -> str | None:
    """The node holding ``slug``'s archive when it is another node, else None."""
    node = cluster.holder(data.read_engine, slug)
    return node if node not in (None, data.settings.cluster.node) else None


def elsewhere(request: Request, data: LogData, node: str | None) -> Response | None:
    """None when ``node`` is None (the archive is here); else the holder's answer."""
    if node is None:
        return None
    url = cluster.api_url(data.read_engine, node)
    if url is None or request.headers.get(HEADER):
        raise held_by(node, url, "it has no [cluster] api_url registered" if url is None else "")
    target = url.rstrip("/") + request.url.path
    if request.url.query:
        target += "?" + request.url.query
    headers = {HEADER: data.settings.cluster.node, "Accept": "application/json"}
    for name in ("authorization", "accept-language"):
        if name in request.headers:
            headers[name.title()] = request.headers[name]
    # The holder checks the user's source networks: it sees this node as the peer, so this
    # node passes the address chain on (list the nodes in the holder's [api] trusted_proxies).
    peer = request.client.host if request.client else None
    chain = [request.headers.get("x-forwarded-for", ""), peer or ""]
    if forwarded_for := ", ".join(p.strip() for p in chain if p.strip()):
        headers["X-Forwarded-For"] = forwarded_for
    if not target.startswith(("http://", "https://")):
        raise held_by(node, url, "its api_url is not an http(s) URL")
    req = urllib.request.Request(target, headers=headers)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310
            status, body, ctype = resp.status, resp.read(), resp.headers.get("Content-Type")
    except urllib.error.HTTPError as err:  # the holder's own answer (404, 403, ...): pass it on
        status, body, ctype = err.code, err.read(), err.headers.get("Content-Type")
    except (OSError, ValueError) as exc:
        log.warning(
            "The node holding an archive did not answer a forwarded request.",
            extra={"node": node, "url": url, "error": str(exc)},
        )
        raise held_by(node, url, f"it did not answer ({exc})") from None
    return Response(body, status_code=status, media_type=ctype or "application/json")


def held_by(node: str, url: str | None, why: str) -> ProblemError:
    """409: the archive needed is on ``node`` and could not be read through it."""
    where = f"node {node}" + (f" ({url})" if url else "")
    reason = f": {why}" if why else ""
    return ProblemError(
        409,
        "held-by-node",
        f"The archive needed is held by {where}{reason}. Ask that node's API, or start it.",
        f"Gereken arşiv {where} düğümündedir{reason}. O düğümün API'sine sorun veya onu başlatın.",
    )
