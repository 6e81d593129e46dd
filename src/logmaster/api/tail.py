"""Live tail: the collector's feed, parsed once and fanned out to the WebSocket sessions.

One :class:`TailHub` per API process. While at least one session is open it subscribes to the
feed (``collector/feed.py``); with none it disconnects, so the collector does no work for tail.

For every feed batch the hub keeps only the sessions allowed to see the batch's device (their
``DeviceScope("tail")``); if none, the lines are not even parsed. Otherwise each line is parsed
once (``logmaster.parsers.parse`` with the device's timezone and pinned format, in a worker
thread so the event loop keeps serving) and offered to every such session whose query matches
(``index/match.py``, the same language as search).

A session holds at most ``tail.queue_lines`` lines for its client. A client that does not keep
up is cut off with the reason "too slow" (close code 4408); the hub never waits for a client,
and the collector never waits for the hub (its sends drop and count instead). Lines the feed
lost on the way are announced to the sessions as a ``gap`` message, without numbers of other
devices' lines.

A device a session cannot see yet (a new sender, a device just approved into the caller's
location) joins within about 2 s, not at the route's 30 s recheck: see :meth:`TailHub._look`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from logmaster import parsers
from logmaster.api.logdata import DeviceDirectory, EventOut, event_out
from logmaster.api.metrics import TAIL_SESSIONS
from logmaster.archive.line import parse_line
from logmaster.collector.feed import FeedBatch, subscribe
from logmaster.config import Settings
from logmaster.db import registry_version
from logmaster.index.match import Predicate

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4408
CLOSE_TOO_MANY = 4429
UNCLAIMED_BATCHES = 64
# While a device some session cannot see sends, the device registry's version is read every
# LOOK_S (one COUNT/MAX query), until SUSPECT_S after that device's last line.
LOOK_S = 1.0
SUSPECT_S = 10.0


# Feed states announced to sessions (queued like "gap"; routes/tail.py sends them as status).
DEGRADED = "degraded"
LIVE = "live"


class TooManyTailsError(Exception):
    """The user already has the allowed number of tail sessions open."""


@dataclass(eq=False)
class TailSession:
    """One WebSocket client's tail: what it may see, what it asked for, what waits for it."""

    user_id: int
    username: str
    devices: frozenset[str]
    predicate: Predicate
    query: str
    limit: int
    id: int = 0
    queue: asyncio.Queue[list[EventOut] | str] = field(default_factory=asyncio.Queue)
    waiting: int = 0  # lines queued, not yet sent
    sent: int = 0
    matched: int = 0
    closed_reason: str | None = None
    # Set when the session must end now (too slow, server stopping), whatever the queue holds.
    cut: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by the hub when a device this session cannot see sends and the device registry
    # changed since its grants were read: the route re-reads them at once (a new pending
    # device, or one just approved into the caller's location, shows within about 2 s).
    refresh: asyncio.Event = field(default_factory=asyncio.Event)
    # The registry version (db.registry_version) this session's devices were read after.
    devices_version: tuple[Any, ...] | None = None
    started: float = field(default_factory=time.monotonic)

    def offer(self, events: list[EventOut]) -> None:
        if self.closed_reason is not None:
            return
        if self.waiting + len(events) > self.limit:
            self.end("too slow")
            return
        self.waiting += len(events)
        self.matched += len(events)
        self.queue.put_nowait(events)

    def end(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self.cut.set()

    def gap(self) -> None:
        if self.closed_reason is None:
            self.queue.put_nowait("gap")

    def notice(self, state: str) -> None:
        """Tell the client the feed's state changed (``degraded`` / ``live``)."""
        if self.closed_reason is None:
            self.queue.put_nowait(state)

    def taken(self, count: int) -> None:
        self.waiting -= count
        self.sent += count


@dataclass
class HubStats:
    batches: int = 0
    lines_parsed: int = 0
    lines_sent: int = 0
    sessions_cut_slow: int = 0
    sessions_refused: int = 0
    rechecks: int = 0  # sessions told to re-read their grants because the devices changed


class TailHub:
    def __init__(self, settings: Settings, devices: DeviceDirectory) -> None:
        self.settings = settings
        self.devices = devices
        self.sessions: set[TailSession] = set()
        self.per_user: Counter[int] = Counter()
        self.stats = HubStats()
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        # Recent batches of devices no session could see, replayed to a session whose grants,
        # re-read, now include their device (bounded; older ones are simply not replayed).
        self.unclaimed: deque[FeedBatch] = deque(maxlen=UNCLAIMED_BATCHES)
        # Devices some session could not see, each until SUSPECT_S after its last line.
        self._suspects: dict[str, float] = {}
        self._looker: asyncio.Task[None] | None = None
        # Whether the feed (Redis) is reachable: None until the first attempt.
        self.feed_up: bool | None = None

    # -- sessions ------------------------------------------------------------------------------

    def open(
        self,
        user_id: int,
        username: str,
        devices: frozenset[str],
        predicate: Predicate,
        query: str,
    ) -> TailSession:
        """Register a session; raise TooManyTailsError past the per-user bound."""
        if self.per_user[user_id] >= self.settings.tail.max_sessions_per_user:
            self.stats.sessions_refused += 1
            raise TooManyTailsError
        session = TailSession(
            user_id,
            username,
            devices,
            predicate,
            query,
            self.settings.tail.queue_lines,
            id=next(self._ids),
        )
        self.sessions.add(session)
        self.per_user[user_id] += 1
        TAIL_SESSIONS.inc()
        if self.feed_up is False:
            session.notice(DEGRADED)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._pump(), name="tail-feed")
        return session

    def close(self, session: TailSession) -> None:
        if session not in self.sessions:
            return
        self.sessions.discard(session)
        TAIL_SESSIONS.dec()
        self.per_user[session.user_id] -= 1
        if self.per_user[session.user_id] <= 0:
            del self.per_user[session.user_id]
        if session.closed_reason == "too slow":
            self.stats.sessions_cut_slow += 1
        if not self.sessions and self._task is not None:
            self._task.cancel()  # nobody tails: leave the feed, the collector stops sending
            self._task = None

    async def shutdown(self) -> None:
        if self._looker is not None:
            self._looker.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for session in list(self.sessions):
            session.end("server stopping")

    # -- the feed --------------------------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            async for batch in subscribe(
                self.settings.data_dir, self.settings.redis_url, self._feed_state
            ):
                await self.dispatch(batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Tail feed failed; open tails get no more lines.")

    def _feed_state(self, up: bool) -> None:
        """Redis lost or back: every open session is told (the first success is no news)."""
        was, self.feed_up = self.feed_up, up
        if up == was or (up and was is None):
            return
        for session in self.sessions:
            session.notice(LIVE if up else DEGRADED)

    async def dispatch(self, batch: FeedBatch) -> None:
        self.stats.batches += 1
        if batch.dropped:
            for session in self.sessions:
                session.gap()
        interested = [s for s in self.sessions if batch.device in s.devices]
        if len(interested) < len(self.sessions):
            self._suspect(batch.device)
        if not interested:
            self.unclaimed.append(batch)
            return
        await self._offer(batch, interested)

    def _suspect(self, slug: str) -> None:
        """A session cannot see ``slug``: look whether it may now (see :meth:`_look`)."""
        self._suspects[slug] = time.monotonic() + SUSPECT_S
        if self._looker is None or self._looker.done():
            self._looker = asyncio.get_running_loop().create_task(self._look(), name="tail-devices")

    async def _look(self) -> None:
        """While devices some session cannot see send: every LOOK_S, read the device
        registry's version; a session that cannot see one of them and whose devices were read
        before the registry last changed (a new sender saved as a pending device, a device
        approved or moved to another location) re-reads its grants now, and gets the recent
        lines replayed if it may see the device. The filter stays the grants themselves: this
        only decides when they are read again. A new device's row is saved a moment after its
        first line, so a device stays suspect for SUSPECT_S after its last line."""
        while self._suspects and self.sessions:
            try:
                version = await asyncio.to_thread(registry_version, self.devices.engine)
            except Exception as exc:  # the database is away: the 30 s recheck still runs
                log.warning("Cannot read the device registry.", extra={"error": str(exc)})
            else:
                for session in self.sessions:
                    if session.devices_version != version and any(
                        slug not in session.devices for slug in self._suspects
                    ):
                        session.devices_version = version  # the re-read starts after it
                        session.refresh.set()
                        self.stats.rechecks += 1
            await asyncio.sleep(LOOK_S)
            now = time.monotonic()
            for slug, until in list(self._suspects.items()):
                if until < now:
                    del self._suspects[slug]

    async def _offer(self, batch: FeedBatch, sessions: list[TailSession]) -> None:
        events = await asyncio.to_thread(self._parse, batch)
        self.stats.lines_parsed += len(events)
        for session in sessions:
            chosen = [out for event, out in events if session.predicate(event)]
            if chosen:
                session.offer(chosen)

    async def regrant(self, session: TailSession, devices: frozenset[str]) -> None:
        """New grants of a session: replay the recent unclaimed lines it may now see."""
        added = devices - session.devices
        session.devices = devices
        for batch in [b for b in self.unclaimed if b.device in added]:
            await self._offer(batch, [session])

    def _parse(self, batch: FeedBatch) -> list[tuple[dict[str, Any], EventOut]]:
        info = self.devices.get(batch.device)
        zone = self.devices.zone(batch.device)
        pinned = info.format if info is not None else None
        out: list[tuple[dict[str, Any], EventOut]] = []
        pos = batch.offset
        for line in batch.lines:
            here = pos
            pos += len(line) + 1
            try:
                parsed = parse_line(line)
            except (ValueError, IndexError):
                event: dict[str, Any] = {
                    "@timestamp": dt.datetime.now(dt.UTC),
                    "message": line.decode("utf-8", "replace"),
                    "error.type": "archive-line",
                }
            else:
                event, _ = parsers.parse(
                    parsed.raw, zone=zone, received=parsed.received, pinned=pinned
                )
                if parsed.marker:
                    event["event.flags"] = parsed.marker.decode()
            event["observer.name"] = batch.device
            event["log.file.path"] = batch.file
            event["log.offset"] = here
            out.append((event, event_out(None, None, event, self.devices)))
        return out
