"""What the routes that return log data share: the index per thread, device facts, event models.

- :class:`IndexPool` hands each worker thread its own index backend (SQLite connections and the
  PostgreSQL backend's lock are per instance; one shared instance would serialise every search).
- :class:`DeviceDirectory` knows each device's slug, timezone and pinned format, cached for a
  few seconds (times in responses are shown in the device's timezone).
- :class:`EventOut` is one event as every route returns it: RFC 3339 times with the device's
  offset and the timezone name, so the console can show device-local times.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.engine import Engine

from logmaster.archive.reader import open_day, resolve
from logmaster.config import Settings
from logmaster.db import Device
from logmaster.index import open_index
from logmaster.index.base import IndexBackend

DEVICES_REFRESH_S = 5.0


class IndexPool:
    """One index backend per thread, opened on first use, closed together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._all: list[IndexBackend] = []
        self._lock = threading.Lock()

    def get(self) -> IndexBackend:
        backend: IndexBackend | None = getattr(self._local, "backend", None)
        if backend is None:
            backend = open_index(self.settings)
            self._local.backend = backend
            with self._lock:
                self._all.append(backend)
        return backend

    def close(self) -> None:
        with self._lock:
            for backend in self._all:
                backend.close()
            self._all.clear()


@dataclass(frozen=True)
class DeviceInfo:
    id: int
    slug: str
    name: str
    timezone: str
    zone: ZoneInfo
    format: str | None
    status: str


class DeviceDirectory:
    """slug -> DeviceInfo from the metadata database, refreshed every few seconds."""

    def __init__(self, engine: Engine, default_timezone: str) -> None:
        self.engine = engine
        self.default_timezone = default_timezone
        self._by_slug: dict[str, DeviceInfo] = {}
        self._at = 0.0
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    Device.id,
                    Device.slug,
                    Device.name,
                    Device.timezone,
                    Device.format,
                    Device.status,
                )
            ).all()
        found: dict[str, DeviceInfo] = {}
        for rid, slug, name, tz, fmt, status in rows:
            found[slug] = DeviceInfo(
                rid, slug, name, tz, zone_of(tz, self.default_timezone), fmt, status
            )
        self._by_slug = found
        self._at = time.monotonic()

    def all(self, fresh: bool = False) -> dict[str, DeviceInfo]:
        if fresh or time.monotonic() - self._at > DEVICES_REFRESH_S:
            with self._lock:
                self._load()
        return self._by_slug

    def get(self, slug: str) -> DeviceInfo | None:
        found = self.all().get(slug)
        if found is None:
            found = self.all(fresh=True).get(slug)  # added a moment ago
        return found

    def zone(self, slug: str) -> ZoneInfo:
        info = self.get(slug)
        return info.zone if info is not None else zone_of(self.default_timezone, "UTC")

    def timezone_name(self, slug: str) -> str:
        info = self.get(slug)
        return info.timezone if info is not None else self.default_timezone


def zone_of(name: str, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def rfc3339(value: dt.datetime, zone: ZoneInfo) -> str:
    """``2026-11-28T10:00:05.123456+03:00``: the moment in the device's zone, offset included."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zone).isoformat()


def jsonable(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, dt.datetime):
        return rfc3339(value, zone)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v, zone) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v, zone) for k, v in value.items()}
    return str(value)


# -- response models ---------------------------------------------------------------------------


class EventOut(BaseModel):
    """One event: where it sits in the archive, when, and its normalized fields."""

    id: str = Field(description="Event id for /events/{id}: archive day and row, 'YYYY-MM-DD.N'.")
    device: str = Field(description="Device slug (observer.name).")
    timezone: str = Field(description="IANA timezone of the device; times below use it.")
    timestamp: str = Field(description="@timestamp (device time, else receive time), RFC 3339.")
    received: str | None = Field(description="event.created: receive time, RFC 3339.")
    message: str = Field(description="The message as received (header removed).")
    file: str | None = Field(description="Archive file (log.file.path).")
    offset: int | None = Field(description="Byte offset of the line in the file (log.offset).")
    fields: dict[str, Any] = Field(description="Every normalized field, flat ECS names.")


def event_id(day: dt.date, row_id: int) -> str:
    return f"{day.isoformat()}.{row_id}"


def parse_event_id(text: str) -> tuple[dt.date, int] | None:
    day, sep, rid = text.partition(".")
    if not sep or not rid.isdigit() or len(rid) > 18:
        return None
    try:
        return dt.date.fromisoformat(day), int(rid)
    except ValueError:
        return None


def event_out(
    day: dt.date | None, row_id: int | None, event: dict[str, Any], devices: DeviceDirectory
) -> EventOut:
    slug = str(event.get("observer.name", ""))
    zone = devices.zone(slug)
    ts = event.get("@timestamp")
    created = event.get("event.created")
    offset = event.get("log.offset")
    return EventOut(
        id=event_id(day, row_id) if day is not None and row_id is not None else "",
        device=slug,
        timezone=devices.timezone_name(slug),
        timestamp=rfc3339(ts, zone) if isinstance(ts, dt.datetime) else str(ts or ""),
        received=rfc3339(created, zone) if isinstance(created, dt.datetime) else None,
        message=str(event.get("message", "")),
        file=event.get("log.file.path"),
        offset=int(offset) if offset is not None else None,
        fields={k: jsonable(v, zone) for k, v in event.items()},
    )


# -- the archive -------------------------------------------------------------------------------


def archive_file(root: Path, device: str, rel: str) -> Path | None:
    """The archive file ``rel`` of ``device``, or None if ``rel`` points anywhere else."""
    parts = rel.split("/")
    if len(parts) != 4 or parts[0] != device or any(p in ("", ".", "..") for p in parts):
        return None
    path = root.joinpath(*parts)
    # A sealed day may have been compressed (28.log.zst): offsets stay those of the plain file.
    return path if resolve(path) is not None else None


def read_line_at(path: Path, offset: int) -> bytes | None:
    """The whole line starting at ``offset`` (without LF), or None past the end."""
    with open_day(path) as fh:
        fh.seek(offset)
        line = fh.readline()
    if not line:
        return None
    return line.rstrip(b"\n")


def lines_around(
    path: Path, offset: int, before: int, after: int
) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """Up to ``before`` lines before and ``after`` lines after the line at ``offset``."""
    earlier: list[tuple[int, bytes]] = []
    with open_day(path) as fh:
        # Read backwards in growing windows until enough whole lines precede the offset.
        window = 4096
        while before and offset > 0:
            start = max(0, offset - window)
            fh.seek(start)
            chunk = fh.read(offset - start)
            if start > 0:
                cut = chunk.find(b"\n") + 1  # the first whole line begins after the first LF
                whole = chunk[cut:] if cut else b""
                if whole.count(b"\n") < before:
                    window *= 4
                    continue
                base = start + cut
            else:
                whole, base = chunk, 0
            pos = base
            found = []
            for piece in whole.split(b"\n")[:-1]:
                found.append((pos, piece))
                pos += len(piece) + 1
            earlier = found[-before:]
            break
        later: list[tuple[int, bytes]] = []
        fh.seek(offset)
        fh.readline()  # the line itself
        pos = fh.tell()
        for _ in range(after):
            line = fh.readline()
            if not line.endswith(b"\n"):
                break  # end of file, or a line still being written
            later.append((pos, line[:-1]))
            pos += len(line)
    return earlier, later


# -- the per-app container -----------------------------------------------------------------------


class LogData:
    """What the log-data routes of one app share: index pool, device directory, tail hub.

    ``engine`` is the API's (audit entries are written through it); ``read_engine`` is a
    second one for the device directory, so that its refresh never waits for a connection of
    the API's pool while every request thread holds one.
    """

    def __init__(self, settings: Settings, engine: Engine) -> None:
        from logmaster.api.tail import TailHub
        from logmaster.db import make_engine

        self.settings = settings
        self.engine = engine
        self.read_engine = make_engine(settings.db_url)
        self.index = IndexPool(settings)
        self.devices = DeviceDirectory(self.read_engine, settings.devices.default_timezone)
        self.hub = TailHub(settings, self.devices)

    async def close(self) -> None:
        await self.hub.shutdown()
        self.index.close()
        self.read_engine.dispose()


_create_lock = threading.Lock()


def logdata_of(app: Any) -> LogData:
    """The app's LogData, made on first use (app.state carries settings and the engine)."""
    found: LogData | None = getattr(app.state, "logdata", None)
    if found is None:
        with _create_lock:
            found = getattr(app.state, "logdata", None)
            if found is None:
                settings: Settings = app.state.settings
                engine: Engine | None = getattr(app.state, "engine", None)
                if engine is None:
                    from logmaster.db import make_engine

                    engine = make_engine(settings.db_url)
                found = LogData(settings, engine)
                app.state.logdata = found
    return found


def logdata(request: Request) -> LogData:
    return logdata_of(request.app)


LogDataDep = Annotated[LogData, Depends(logdata)]
