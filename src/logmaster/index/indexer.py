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

One ``Indexer`` parses in its own process. To use more cores, :mod:`logmaster.index.workers`
runs one indexer per *share* of the devices (``share=(k, n)``: the devices whose
:func:`~logmaster.index.base.shard_of` is k), each parsing and writing its own devices; no
file is ever indexed by two processes, so checkpoints stay exactly once.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine

from logmaster import parsers
from logmaster.archive.line import parse_line
from logmaster.archive.reader import open_day
from logmaster.archive.verify import day_files
from logmaster.cluster import index_node, qualify, split_ref
from logmaster.config import Settings
from logmaster.db import Device, sessions
from logmaster.index.base import Batch, IndexBackend, IndexedEvent, shard_of
from logmaster.index.fields import split_event
from logmaster.index.sessions import Timeouts, session_ops

log = logging.getLogger(__name__)

READ_CHUNK = 8 << 20
# What an unreachable index database raises: the write is retried (Indexer._retrying).
RETRYABLE: tuple[type[BaseException], ...] = (ConnectionError,)
try:
    import psycopg

    RETRYABLE = (ConnectionError, psycopg.OperationalError)
except ImportError:  # pragma: no cover - psycopg is a dependency
    pass
DEVICES_REFRESH_S = 5.0


@dataclass
class DeviceInfo:
    zone: ZoneInfo
    pinned: str | None
    node: str | None = None  # the node holding the device's archive (devices.node)


@dataclass
class IndexerStats:
    lines: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # device -> parse failures
    batches: int = 0
    # receive time of the newest indexed line, for the lag gauge
    newest_received: float = 0.0
    bytes_behind: int = 0
    # Failed attempts to write to the index (its database unreachable); each is retried.
    retries: int = 0


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
        share: tuple[int, int] | None = None,
        node: str | None = None,
    ) -> None:
        self.root = archive_root
        # Set when the index is shared by several nodes: file references become NODE:path.
        self.node = node
        self.share = share
        self._stop = threading.Event()  # run()'s, so that a long catch-up can be interrupted
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
    def from_settings(cls, settings: Settings, share: tuple[int, int] | None = None) -> Indexer:
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
            share=share,
            node=index_node(settings),
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
                rows = s.execute(
                    select(Device.slug, Device.timezone, Device.format, Device.node)
                ).all()
        except Exception as exc:
            log.error(
                "Device registry unreadable; using the default timezone.", extra={"error": str(exc)}
            )
            return
        self._devices = {slug: DeviceInfo(ZoneInfo(tz), fmt, node) for slug, tz, fmt, node in rows}

    # -- running ----------------------------------------------------------------------------

    def mine(self, device: str) -> bool:
        """Whether this indexer's share of the devices includes ``device``."""
        return self.share is None or shard_of(device, self.share[1]) == self.share[0]

    def catch_up(self) -> int:
        """Index every line of every day file not indexed yet; return the lines indexed."""
        files = day_files(self.root, compressed=True, supplements=True)
        return self.index_files(f for f in files if self.mine(f[0]))

    def _retrying(self, work: Callable[[], int], stop: threading.Event) -> int:
        """``work()``, repeated while the index's database cannot be reached.

        The archive does not need the database, so an outage only delays indexing: each failed
        attempt is counted (``logmaster_index_retries_total``) and logged, the cached offsets are
        forgotten (the failed transaction may or may not have committed: the checkpoints, which
        commit with the events, say which) and the work is tried again, waiting 1 s doubling
        to 30 s. Nothing is indexed twice or skipped.
        """
        wait = 1.0
        while True:
            try:
                return work()
            except RETRYABLE as exc:
                self.stats.retries += 1
                self._offsets.clear()
                log.error(
                    "Index database unreachable; indexing resumes when it is back, from the "
                    "last committed checkpoint.",
                    extra={
                        "error": str(exc).strip()[:300],
                        "retries": self.stats.retries,
                        "retry_in_s": wait,
                    },
                )
                if stop.wait(wait):
                    return 0
                wait = min(wait * 2, 30.0)

    def run(self, stop: threading.Event) -> None:
        """Catch up, then follow the active day files until ``stop`` is set."""
        self._stop = stop
        self._retrying(self.catch_up, stop)
        devices: list[str] = []
        supplements: list[tuple[str, dt.date, Path]] = []
        next_devices = 0.0
        while not stop.is_set():
            now = time.monotonic()
            today = dt.datetime.now(dt.UTC).date()
            days = [today + dt.timedelta(days=delta) for delta in (-1, 0, 1)]
            if now >= next_devices:
                devices = (
                    sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.mine(p.name))
                    if self.root.is_dir()
                    else []
                )
                # Late lines of a sealed day go to a supplement (archive/writer.py): rare, so
                # looked for with the device list, not on every poll.
                supplements = [
                    (device, day, path)
                    for device in devices
                    for day in days
                    for path in sorted(
                        (self.root / device / f"{day:%Y}" / f"{day:%m}").glob(
                            f"{day:%d}.s[0-9]*.log"
                        )
                    )
                ]
                next_devices = now + DEVICES_REFRESH_S
            changed: list[tuple[str, dt.date, Path]] = []
            behind = 0
            watched = [
                (device, day, self.root / device / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}.log")
                for device in devices
                for day in days
            ]
            for device, day, path in watched + supplements:
                try:
                    size = os.stat(path).st_size
                except FileNotFoundError:
                    continue
                known = self._offsets.get(self._rel(path), -1)
                if size > known:
                    changed.append((device, day, path))
                    behind += size - max(known, 0)
            self.stats.bytes_behind = behind
            worked = (
                self._retrying(functools.partial(self.index_files, changed), stop) if changed else 0
            )
            if not worked:
                stop.wait(self.poll_interval)

    def _rel(self, path: Path) -> str:
        """The index's reference to an archive file (node-qualified in a shared index)."""
        return qualify(self.node, path.relative_to(self.root).as_posix())

    def _checkpoint(self, device: str, rel: str, day: dt.date) -> int:
        offset = self.backend.checkpoint(rel, day)
        if offset or self.node is None:
            return offset
        # A node that indexed into this (shared) index before it knew its name left plain
        # checkpoints; it continues from them, unless the device is held by another node
        # (then the plain checkpoint is that node's file, not this one).
        if self._device(device).node not in (None, self.node):
            return 0
        return self.backend.checkpoint(split_ref(rel)[1], day)

    # -- one file ---------------------------------------------------------------------------

    def index_file(self, device: str, day: dt.date, path: Path) -> int:
        """Index the whole lines of ``path`` after its checkpoint; return how many."""
        return self._run(self._jobs(device, day, path))

    def index_files(self, files: Iterable[tuple[str, dt.date, Path]]) -> int:
        """Index several files, grouping their pieces into batches."""
        return self._run(job for f in files for job in self._jobs(*f))

    def _jobs(self, device: str, day: dt.date, path: Path) -> Iterator[Job]:
        """Parse jobs of ``batch_lines`` whole lines each, from the file's checkpoint on."""
        rel = self._rel(path)
        offset = self._offsets.get(rel)
        if offset is None:
            offset = self._checkpoint(device, rel, day)
            self._offsets[rel] = offset
        info = self._device(device)
        # A sealed day may be compressed (archive/compress.py): open_day reads it as the plain
        # file it was, and offsets stay offsets in the uncompressed bytes.
        with open_day(path) as fh:
            if offset:
                fh.seek(offset)
            rest = b""
            while True:
                chunk = fh.read(READ_CHUNK)
                if not chunk:
                    break  # a line without its LF yet stays for the next poll
                chunk = rest + chunk
                end = chunk.rfind(b"\n") + 1
                rest = chunk[end:]
                if end == 0:
                    continue
                lines = chunk[:end].split(b"\n")[:-1]
                for start in range(0, len(lines), self.batch_lines):
                    part = lines[start : start + self.batch_lines]
                    yield (
                        device,
                        day,
                        rel,
                        info.zone.key,
                        info.pinned,
                        offset,
                        part,
                        self.timeouts,
                    )
                    offset += sum(len(line) + 1 for line in part)

    def _run(self, jobs: Iterator[Job]) -> int:
        """Parse jobs and write them in order.

        Small pieces of several files (the tail of each active day file on every poll) are
        grouped up to ``batch_lines``: one transaction for all of them, not one per file.
        """
        done = 0
        for group in _groups(jobs, self.batch_lines):
            done += self._write(parse_group(group))
            if self._stop.is_set():
                break  # asked to stop mid catch-up: the checkpoints say where to resume
        return done

    def _write(self, batch: Batch) -> int:
        self.backend.write(batch)
        done = 0
        for rel, (_day, offset, lines, failures) in batch.files.items():
            self._offsets[rel] = offset
            done += lines
            if failures:
                device = split_ref(rel)[1].split("/", 1)[0]
                self.stats.failures[device] = self.stats.failures.get(device, 0) + failures
        self.stats.lines += done
        self.stats.batches += 1
        if batch.newest_received:
            self.stats.newest_received = batch.newest_received
        return done

    def close(self) -> None:
        self.backend.close()


Job = tuple[str, dt.date, str, str, str | None, int, list[bytes], Timeouts]


def _groups(jobs: Iterator[Job], size: int) -> Iterator[list[Job]]:
    group: list[Job] = []
    lines = 0
    for job in jobs:
        group.append(job)
        lines += len(job[6])
        if lines >= size:
            yield group
            group, lines = [], 0
    if group:
        yield group


def parse_group(jobs: list[Job]) -> Batch:
    """Parse several pieces (of one or more files) into one batch, in order."""
    merged = Batch()
    for job in jobs:
        part = parse_lines(*job)
        merged.events.extend(part.events)
        merged.sessions.extend(part.sessions)
        for rel, (day, offset, lines, failures) in part.files.items():
            _, _, lines0, failures0 = merged.files.get(rel, (day, 0, 0, 0))
            merged.files[rel] = (day, offset, lines + lines0, failures + failures0)
        merged.newest_received = max(merged.newest_received, part.newest_received)
    return merged


def parse_lines(
    device: str,
    day: dt.date,
    rel: str,
    zone_key: str,
    pinned: str | None,
    offset: int,
    lines: list[bytes],
    timeouts: Timeouts,
) -> Batch:
    """Parse archive lines of one file into a batch (events, session operations, checkpoint).

    A plain function of its arguments so it can run in a worker process.
    """
    zone = _zone(zone_key)
    batch = Batch()
    failures = 0
    pos = offset
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
                parsed.raw, zone=zone, received=parsed.received, pinned=pinned
            )
            if parsed.marker:
                event["event.flags"] = parsed.marker.decode()
            if not understood:
                failures += 1
            batch.newest_received = parsed.received.timestamp()
        event["observer.name"] = device
        event["log.file.path"] = rel
        event["log.offset"] = here
        row, extra = split_event(event)
        batch.events.append(IndexedEvent(day, row, extra))
        batch.sessions.extend(session_ops(event, rel, here, day, timeouts))
    batch.files[rel] = (day, pos, len(lines), failures)
    return batch


@functools.lru_cache(maxsize=256)
def _zone(key: str) -> ZoneInfo:
    return ZoneInfo(key)
