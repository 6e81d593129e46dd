"""The index backend contract: what the indexer writes and what search and attribution read.

A backend stores, per *archive day* (the date of the day file a line came from):

- events: one row per archive line (the columns of ``index/fields.py`` + ``extra`` JSON), with
  the line's archive file and byte offset so the raw line can always be shown;
- checkpoints: for each archive file, the byte offset up to which its lines are indexed. Written
  in the same transaction as the events, so a restart (even after kill -9) resumes exactly where
  the last committed batch ended: every line is indexed once;
- parse statistics: lines and parse failures per archive file (the seal's manifest reports them).

and sessions (NAT translations, DHCP leases, hotspot logins) as intervals, applied as
idempotent operations (``index/sessions.py``), so replaying a batch after a crash changes nothing.

Implementations: ``sqlite.py`` (one file per day) and ``postgres.py`` (day partitions). The shared
contract tests in ``tests/index/test_contract.py`` run against every backend in ``BACKENDS``.
"""

from __future__ import annotations

import datetime as dt
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from logmaster.config import Settings
    from logmaster.index.query import Node

SessionKind = Literal["nat", "dhcp", "hotspot"]


@dataclass(slots=True)
class IndexedEvent:
    day: dt.date  # archive day: the partition
    row: list[Any]  # column values in fields.COLUMNS order (fields.split_event)
    extra: str | None  # JSON of the other fields


@dataclass(slots=True)
class SessionOp:
    """One change to the sessions table; see ``index/sessions.py`` for how they are made.

    op: "open" (a start line; ``expires`` bounds it when no end line comes), "span" (a line that
    carries a whole interval), "close" (an end line: closes the newest matching open session),
    "renew" (a lease renewal: pushes ``expires`` of the matching open session, or opens one).
    """

    op: Literal["open", "span", "close", "renew"]
    kind: SessionKind
    device: str
    at: int  # microseconds: start for open/span/renew, end for close
    ref_file: str
    ref_offset: int
    day: dt.date
    end: int | None = None  # span only
    expires: int | None = None
    inner_ip: str | None = None
    inner_port: int | None = None
    outer_ip: str | None = None
    outer_port: int | None = None
    mac: str | None = None
    user: str | None = None
    transport: str | None = None
    hostname: str | None = None


@dataclass(slots=True)
class Batch:
    events: list[IndexedEvent] = field(default_factory=list)
    sessions: list[SessionOp] = field(default_factory=list)
    # archive file (relative path) -> (its day, new offset, lines, parse failures in this batch)
    files: dict[str, tuple[dt.date, int, int, int]] = field(default_factory=dict)
    # receive time (epoch seconds) of the newest line in the batch, for the lag gauge
    newest_received: float = 0.0


@dataclass(slots=True)
class Session:
    kind: SessionKind
    device: str
    start: dt.datetime
    end: dt.datetime | None  # None: no end line (yet)
    expires: dt.datetime | None
    inner_ip: str | None
    inner_port: int | None
    outer_ip: str | None
    outer_port: int | None
    mac: str | None
    user: str | None
    transport: str | None
    hostname: str | None
    start_ref: tuple[str, int]
    end_ref: tuple[str, int] | None


@dataclass(slots=True)
class SearchRequest:
    query: Node | None
    start: dt.datetime
    end: dt.datetime
    limit: int = 100
    cursor: str | None = None
    devices: frozenset[str] | None = None  # None = every device (callers filter by permission)


@dataclass(slots=True)
class Hit:
    day: dt.date
    id: int
    event: dict[str, Any]


@dataclass(slots=True)
class SearchPage:
    hits: list[Hit]
    cursor: str | None  # pass back to get the next (older) page; None = no more


def shard_of(device: str, shards: int) -> int:
    """The share (shard) of the devices a device belongs to: stable across processes and
    restarts (crc32, not Python's salted hash()). Indexer processes split devices by it, and
    the SQLite index keeps each shard in its own files."""
    return zlib.crc32(device.encode()) % shards if shards > 1 else 0


class IndexBackend(ABC):
    """A place to store and search events and sessions. One writer (the indexer) at a time."""

    name: str = ""

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> IndexBackend:
        """Open the backend the settings describe."""

    @abstractmethod
    def checkpoint(self, file: str, day: dt.date) -> int:
        """Byte offset up to which ``file`` (archive-relative path) is indexed; 0 if never."""

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Store events, sessions and new checkpoints; events+checkpoints of a day atomically."""

    @abstractmethod
    def search(self, request: SearchRequest) -> SearchPage:
        """Matching events, newest first (by @timestamp, then insertion), one page."""

    @abstractmethod
    def histogram(self, request: SearchRequest, buckets: int) -> list[tuple[dt.datetime, int]]:
        """Counts of matching events in ``buckets`` equal slices of the range."""

    @abstractmethod
    def device_counts(self, request: SearchRequest) -> dict[str, int]:
        """Counts of matching events per device."""

    @abstractmethod
    def get(self, day: dt.date, event_id: int) -> dict[str, Any] | None:
        """One event by its day and id."""

    @abstractmethod
    def sessions(
        self,
        kind: SessionKind,
        start: dt.datetime,
        end: dt.datetime,
        *,
        outer_ip: str | None = None,
        outer_port: int | None = None,
        inner_ip: str | None = None,
        mac: str | None = None,
        user: str | None = None,
    ) -> list[Session]:
        """Sessions of ``kind`` that overlap [start, end] and match every given key."""

    @abstractmethod
    def parse_stats(self, day: dt.date) -> dict[str, tuple[int, int]]:
        """Per archive file of ``day``: (lines indexed, parse failures)."""

    @abstractmethod
    def drop_days(self, first: dt.date, last: dt.date) -> None:
        """Forget everything indexed from archive days first..last (for reindex/retention)."""

    @abstractmethod
    def days(self) -> list[dt.date]:
        """Archive days that have an index partition."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
