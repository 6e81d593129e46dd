"""Health: archive writable, index lag, database reachable. No sign-in needed, no log data given.

``status`` is ``ok``, ``degraded`` (the index is more than :data:`LAG_DEGRADED_S` behind the
archive: search misses the newest lines) or ``failing`` (the archive cannot be written or the
database cannot be reached), answered with HTTP 503 so a load balancer or monitor can act on it.
The figures are computed at most every :data:`CACHE_S` seconds, so polling cannot load the server.

Index lag is measured from the archive: for each day file written in the last two days, the
bytes after the index's checkpoint; the lag is the age of the oldest line not yet indexed.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from logmaster.api.logdata import LogData, LogDataDep, read_line_at
from logmaster.archive.line import parse_line
from logmaster.archive.verify import day_files

router = APIRouter(tags=["health"])

CACHE_S = 2.0
LAG_DEGRADED_S = 60.0
MIN_FREE_BYTES = 64 << 20
RECENT_S = 2 * 86400


class ArchiveHealth(BaseModel):
    ok: bool
    writable: bool
    free_bytes: int


class IndexHealth(BaseModel):
    ok: bool = Field(description="The index is less than a minute behind the archive.")
    lag_seconds: float = Field(description="Age of the oldest archived line not yet indexed.")
    bytes_behind: int = Field(description="Archive bytes written but not yet indexed.")


class DatabaseHealth(BaseModel):
    ok: bool


class HealthOut(BaseModel):
    """The server's health; no log data."""

    status: Literal["ok", "degraded", "failing"]
    archive: ArchiveHealth
    index: IndexHealth
    database: DatabaseHealth


_cache: dict[int, tuple[float, HealthOut]] = {}
_lock = threading.Lock()


def _archive(data: LogData) -> ArchiveHealth:
    root = data.settings.archive_dir
    while not root.exists() and root != root.parent:
        root = root.parent  # not created yet: the collector makes it where it may write
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return ArchiveHealth(ok=False, writable=False, free_bytes=0)
    writable = os.access(root, os.W_OK | os.X_OK)
    return ArchiveHealth(ok=writable and free >= MIN_FREE_BYTES, writable=writable, free_bytes=free)


def _index(data: LogData) -> IndexHealth:
    root = data.settings.archive_dir
    backend = data.index.get()
    now = time.time()
    behind = 0
    oldest: float | None = None
    for _device, day, path in day_files(root):
        try:
            st = path.stat()
        except OSError:
            continue
        if now - st.st_mtime > RECENT_S:
            continue
        done = backend.checkpoint(path.relative_to(root).as_posix(), day)
        if st.st_size <= done:
            continue
        behind += st.st_size - done
        line = read_line_at(path, done)
        try:
            received = parse_line(line).received.timestamp() if line else now
        except (ValueError, IndexError):
            received = now
        oldest = received if oldest is None else min(oldest, received)
    lag = max(0.0, now - oldest) if oldest is not None else 0.0
    return IndexHealth(ok=lag <= LAG_DEGRADED_S, lag_seconds=round(lag, 3), bytes_behind=behind)


def _database(data: LogData) -> DatabaseHealth:
    try:
        with data.read_engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:
        return DatabaseHealth(ok=False)
    return DatabaseHealth(ok=True)


def check(data: LogData) -> HealthOut:
    with _lock:
        cached = _cache.get(id(data))
        if cached is not None and time.monotonic() - cached[0] < CACHE_S:
            return cached[1]
        archive, database = _archive(data), _database(data)
        try:
            index = _index(data)
        except Exception:
            index = IndexHealth(ok=False, lag_seconds=-1, bytes_behind=-1)
        status: Literal["ok", "degraded", "failing"] = "ok"
        if not index.ok:
            status = "degraded"
        if not archive.ok or not database.ok:
            status = "failing"
        out = HealthOut(status=status, archive=archive, index=index, database=database)
        _cache[id(data)] = (time.monotonic(), out)
        return out


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Failing: see which check."}},
)
def get_health(data: LogDataDep) -> HealthOut | JSONResponse:
    """Archive writable, index lag, database reachable (no sign-in; no log data)."""
    out = check(data)
    if out.status == "failing":
        return JSONResponse(out.model_dump(), status_code=503)
    return out
