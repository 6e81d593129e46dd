"""The indexer: tails the archive, parses new lines, writes events and sessions in batches.

For every day file it keeps reading from the checkpoint the backend holds for it, takes only
whole lines (a line still being written waits for its LF), parses each one with the device's
timezone (and pinned format, if any), and hands a :class:`~logmaster.index.base.Batch` to the
backend, whose checkpoint for the file moves in the same transaction as the events. A restart,
even after kill -9, therefore continues exactly after the last committed line.

Finding work: at start (and with ``--once``) every day file is compared with its checkpoint;
afterwards only the files of the last, current and next UTC day of each device are watched every
``poll_interval_ms`` (new devices are found every few seconds), so new lines are indexed within a
second without walking years of archive.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine

from logmaster import parsers
from logmaster.archive.line import parse_line
from logmaster.archive.verify import day_files
from logmaster.config import Settings
from logmaster.db import Device, sessions
from logmaster.index.base import Batch, IndexBackend, IndexedEvent
from logmaster.index.fields import split_event
from logmaster.index.sessions import Timeouts, session_ops

log = logging.getLogger(__name__)

READ_CHUNK = 8 << 20
DEVICES_REFRESH_S = 5.0


@dataclass
class DeviceInfo:
    zone: ZoneInfo
    pinned: str | None


@dataclass
class IndexerStats:
    lines: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # device -> parse failures
    batches: int = 0
    # receive time of the newest indexed line, for the lag gauge
    newest_received: float = 0.0
    bytes_behind: int = 0


class Indexer:
    def __init__(
        self,
        archive_root: Path,
        backend: IndexBackend,
        engine: Engine | None,
        *,
        batch_lines: int = 5000,
        poll_interval: float = 0.25,
        timeouts: Timeouts | None = None,
        default_timezone: str = "Europe/Istanbul",
    ) -> None:
        self.root = archive_root
        self.backend = backend
        self.engine = engine
        self.batch_lines = batch_lines
        self.poll_interval = poll_interval
        self.timeouts = timeouts or Timeouts()
        self.default_zone = ZoneInfo(default_timezone)
        self.stats = IndexerStats()
        self._devices: dict[str, DeviceInfo] = {}
        self._devices_at = 0.0
        # archive file -> offset known to be indexed (saves a checkpoint lookup per poll)
        self._offsets: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Indexer:
        """The indexer of the settings' archive, index backend and device registry."""
        from logmaster.db import make_engine, migrate
        from logmaster.index import open_index

        migrate(settings.db_url)
        idx = settings.index
        return cls(
            settings.archive_dir,
            open_index(settings),
            make_engine(settings.db_url),
            batch_lines=idx.batch_lines,
            poll_interval=idx.poll_interval_ms / 1000,
            timeouts=Timeouts(
                nat=idx.nat_timeout_s, lease=idx.lease_timeout_s, hotspot=idx.hotspot_timeout_s
            ),
            default_timezone=settings.devices.default_timezone,
        )

    # -- devices ----------------------------------------------------------------------------

    def _device(self, slug: str) -> DeviceInfo:
        now = time.monotonic()
        if now - self._devices_at > DEVICES_REFRESH_S or slug not in self._devices:
            self._load_devices()
            self._devices_at = now
        return self._devices.get(slug) or DeviceInfo(self.default_zone, None)

    def _load_devices(self) -> None:
        if self.engine is None:
            return
        try:
            with sessions(self.engine)() as s:
                rows = s.execute(select(Device.slug, Device.timezone, Device.format)).all()
        except Exception as exc:
            log.error(
                "Device registry unreadable; using the default timezone.", extra={"error": str(exc)}
            )
            return
        self._devices = {slug: DeviceInfo(ZoneInfo(tz), fmt) for slug, tz, fmt in rows}

    # -- running ----------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Index every line of every day file not indexed yet; return the lines indexed."""
        total = 0
        for device, day, path in day_files(self.root):
            total += self.index_file(device, day, path)
        return total

    def run(self, stop: threading.Event) -> None:
        """Catch up, then follow the active day files until ``stop`` is set."""
        self.catch_up()
        devices: list[str] = []
        next_devices = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_devices:
                devices = (
                    sorted(p.name for p in self.root.iterdir() if p.is_dir())
                    if self.root.is_dir()
                    else []
                )
                next_devices = now + DEVICES_REFRESH_S
            today = dt.datetime.now(dt.UTC).date()
            worked = 0
            behind = 0
            for device in devices:
                for delta in (-1, 0, 1):
                    day = today + dt.timedelta(days=delta)
                    path = self.root / device / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}.log"
                    try:
                        size = os.stat(path).st_size
                    except FileNotFoundError:
                        continue
                    rel = self._rel(path)
                    if size > self._offsets.get(rel, -1):
                        worked += self.index_file(device, day, path)
                        behind += max(0, size - self._offsets.get(rel, 0))
            self.stats.bytes_behind = behind
            if not worked:
                stop.wait(self.poll_interval)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # -- one file ---------------------------------------------------------------------------

    def index_file(self, device: str, day: dt.date, path: Path) -> int:
        """Index the whole lines of ``path`` after its checkpoint; return how many."""
        rel = self._rel(path)
        offset = self._offsets.get(rel)
        if offset is None:
            offset = self.backend.checkpoint(rel, day)
        info = self._device(device)
        done = 0
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            while offset < size:
                fh.seek(offset)
                chunk = fh.read(READ_CHUNK)
                end = chunk.rfind(b"\n") + 1
                if end == 0:
                    break  # a line still being written
                lines = chunk[:end].split(b"\n")[:-1]
                for start in range(0, len(lines), self.batch_lines):
                    part = lines[start : start + self.batch_lines]
                    offset = self._index_lines(device, day, rel, info, offset, part)
                    done += len(part)
        self._offsets[rel] = offset
        return done

    def _index_lines(
        self,
        device: str,
        day: dt.date,
        rel: str,
        info: DeviceInfo,
        offset: int,
        lines: list[bytes],
    ) -> int:
        batch = Batch()
        failures = 0
        pos = offset
        timeouts = self.timeouts
        for line in lines:
            here = pos
            pos += len(line) + 1
            try:
                parsed = parse_line(line)
            except (ValueError, IndexError):
                # Not an archive line (the archive writer never makes one): keep it findable.
                failures += 1
                event = {
                    "@timestamp": dt.datetime.now(dt.UTC),
                    "message": line.decode("utf-8", "replace"),
                    "error.type": "archive-line",
                }
            else:
                event, understood = parsers.parse(
                    parsed.raw, zone=info.zone, received=parsed.received, pinned=info.pinned
                )
                if parsed.marker:
                    event["event.flags"] = parsed.marker.decode()
                if not understood:
                    failures += 1
                self.stats.newest_received = parsed.received.timestamp()
            event["observer.name"] = device
            event["log.file.path"] = rel
            event["log.offset"] = here
            row, extra = split_event(event)
            batch.events.append(IndexedEvent(day, row, extra))
            batch.sessions.extend(session_ops(event, rel, here, day, timeouts))
        batch.files[rel] = (day, pos, len(lines), failures)
        self.backend.write(batch)
        self.stats.lines += len(lines)
        self.stats.batches += 1
        if failures:
            self.stats.failures[device] = self.stats.failures.get(device, 0) + failures
        return pos
