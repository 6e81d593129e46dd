"""The feed: every flushed batch of archive lines, offered to live-tail subscribers (the API).

The archive thread calls :meth:`Feed.publish` once per day file per flush with the lines it has
just written (device, archive file, byte offset of the first line, the lines). It never waits
for a subscriber:

- embedded mode (:class:`UnixFeed`): a ``SOCK_SEQPACKET`` Unix socket ``<data>/run/feed.sock``
  (mode 0660). Each API process connects as a subscriber; sends are non-blocking, so a subscriber
  whose socket buffer is full loses that message, and the lines lost are counted and announced
  to it in the next message it does receive (``dropped``), so a tail can say "N lines skipped";
- with ``redis_url`` (:class:`RedisFeed`): Redis pub/sub on the channel ``logmaster:feed``. The
  archive thread only appends to a bounded queue; a publisher thread sends. While nobody is
  subscribed (checked every second) nothing is queued.

With no subscriber, :meth:`publish` is one attribute test: the ingest hot path pays nothing.

One message (a Unix datagram or a Redis payload)::

    {"v":1,"device":"gw1","file":"gw1/2026/11/28.log","offset":1234,"dropped":0}\\n
    <archive line>\\n<archive line>\\n...

Lines of one message are consecutive in the file, so the n-th line's offset is ``offset`` plus
the lengths of the lines before it. A batch larger than :data:`CHUNK_BYTES` is split.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

CHANNEL = "logmaster:feed"
CHUNK_BYTES = 32 * 1024
# Large enough for one whole message: a chunk, or one line of the longest message escaped.
RECV_BYTES = 1 << 20
SOCKET_NAME = "feed.sock"


@dataclass(slots=True)
class FeedBatch:
    """Consecutive archive lines of one day file, as a subscriber receives them."""

    device: str
    file: str  # archive-relative path, as the index stores it (log.file.path)
    offset: int  # byte offset of the first line
    lines: list[bytes]  # without LF
    dropped: int = 0  # lines this subscriber lost (fell behind) since its previous message


def socket_path(data_dir: Path) -> Path:
    return data_dir / "run" / SOCKET_NAME


def encode(device: str, file: str, offset: int, data: bytes, dropped: int = 0) -> bytes:
    head = orjson.dumps(
        {"v": 1, "device": device, "file": file, "offset": offset, "dropped": dropped}
    )
    return head + b"\n" + data


def decode(message: bytes) -> FeedBatch:
    """Raise ValueError for a message that is not a feed message."""
    head, sep, body = message.partition(b"\n")
    if not sep:
        raise ValueError("feed message without a header line")
    try:
        meta: Any = orjson.loads(head)
        batch = FeedBatch(
            str(meta["device"]), str(meta["file"]), int(meta["offset"]), [], int(meta["dropped"])
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad feed header: {exc}") from exc
    batch.lines = body.split(b"\n")
    if batch.lines and batch.lines[-1] == b"":
        batch.lines.pop()
    return batch


def chunks(lines: list[bytes], size: int = CHUNK_BYTES) -> list[tuple[int, bytes, int]]:
    """(offset from the first line, joined lines, line count) pieces of at most ~``size``."""
    out: list[tuple[int, bytes, int]] = []
    start = 0
    piece: list[bytes] = []
    piece_bytes = 0
    for line in lines:
        if piece and piece_bytes + len(line) > size:
            out.append((start, b"".join(piece), len(piece)))
            start += piece_bytes
            piece, piece_bytes = [], 0
        piece.append(line)
        piece_bytes += len(line)
    if piece:
        out.append((start, b"".join(piece), len(piece)))
    return out


@dataclass
class FeedStats:
    published_lines: int = 0
    dropped_lines: int = 0  # lost by subscribers that fell behind (or by a full Redis queue)
    subscribers: int = 0


class Feed:
    """Where the archive writer offers flushed lines. The base class publishes nowhere."""

    def __init__(self) -> None:
        self.stats = FeedStats()
        # Read by the archive thread on every flush: the whole cost when nobody tails.
        self.active = False

    def publish(self, device: str, file: str, offset: int, lines: list[bytes]) -> None:
        """Offer ``lines`` (each ending in LF) written at ``offset`` of ``file`` (archive-relative
        path: the day file, or its supplement once the day is sealed)."""

    def start(self) -> None:
        """Begin accepting subscribers."""

    def stop(self) -> None:
        """Stop; subscribers see the end of the feed."""


class _Subscriber:
    __slots__ = ("dropped", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.dropped = 0


class UnixFeed(Feed):
    """Subscribers connect to a SOCK_SEQPACKET socket; sends never block (see module doc)."""

    def __init__(self, path: Path, send_buffer_bytes: int = 4 << 20) -> None:
        super().__init__()
        self.path = path
        self.send_buffer = send_buffer_bytes
        self._subs: tuple[_Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a collector that was killed; we hold the data dir lock
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o660)
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, name="feed-accept", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
            with self._lock:
                self._subs = (*self._subs, _Subscriber(conn))
                self._changed()
            log.info("Feed subscriber connected.", extra={"subscribers": len(self._subs)})

    def _changed(self) -> None:
        self.stats.subscribers = len(self._subs)
        self.active = bool(self._subs)

    def _remove(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)
            self._changed()
        sub.sock.close()
        log.info("Feed subscriber left.", extra={"subscribers": len(self._subs)})

    def publish(self, device: str, file: str, offset: int, lines: list[bytes]) -> None:
        if not self.active:
            return
        pieces = chunks(lines)
        self.stats.published_lines += len(lines)
        for sub in self._subs:
            for start, data, count in pieces:
                message = encode(device, file, offset + start, data, sub.dropped)
                try:
                    sub.sock.send(message)
                except BlockingIOError:
                    # The subscriber fell behind: it loses these lines, and is told so.
                    sub.dropped += count
                    self.stats.dropped_lines += count
                    continue
                except OSError as exc:
                    if exc.errno == errno.EMSGSIZE:  # one line longer than the socket takes
                        sub.dropped += count
                        self.stats.dropped_lines += count
                        continue
                    self._remove(sub)  # gone (EPIPE, ECONNRESET)
                    break
                sub.dropped = 0

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sub in self._subs:
            sub.sock.close()
        with self._lock:
            self._subs = ()
            self._changed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class RedisFeed(Feed):
    """Redis pub/sub: the archive thread queues, a publisher thread sends (never blocks ingest)."""

    def __init__(self, url: str, queue_messages: int = 2000) -> None:
        super().__init__()
        self.url = url
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_messages)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="feed-redis", daemon=True)
        self._thread.start()

    def publish(self, device: str, file: str, offset: int, lines: list[bytes]) -> None:
        if not self.active:
            return
        self.stats.published_lines += len(lines)
        for start, data, count in chunks(lines):
            try:
                self._queue.put_nowait(encode(device, file, offset + start, data, self._dropped))
            except queue.Full:
                self._dropped += count
                self.stats.dropped_lines += count
                continue
            self._dropped = 0

    def _run(self) -> None:
        import redis

        client: Any = None
        next_check = 0.0
        while not self._stop.is_set():
            try:
                if client is None:
                    client = redis.Redis.from_url(self.url, socket_timeout=5)
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 1.0
                    ((_, count),) = client.pubsub_numsub(CHANNEL)
                    self.active = int(count) > 0
                    self.stats.subscribers = int(count)
                try:
                    message = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                if message is None:
                    return
                client.publish(CHANNEL, message)
            except Exception as exc:  # redis down: tails pause, ingest does not care
                self.active = False
                client = None
                log.warning("Feed cannot reach Redis; retrying.", extra={"error": str(exc)})
                self._stop.wait(2.0)

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout=5)


def open_feed(data_dir: Path, redis_url: str | None, send_buffer_bytes: int = 4 << 20) -> Feed:
    """The feed of the settings: Redis pub/sub when a URL is set, else the local socket."""
    if redis_url:
        return RedisFeed(redis_url)
    return UnixFeed(socket_path(data_dir), send_buffer_bytes)


# -- subscribers (API processes) ------------------------------------------------------------------


async def subscribe(
    data_dir: Path, redis_url: str | None, on_state: Callable[[bool], None] | None = None
) -> AsyncIterator[FeedBatch]:
    """Feed batches as they come, until cancelled. Reconnects while the collector is away.

    ``on_state(False)`` when Redis cannot be reached (the tail is paused; lines are still
    archived and indexed), ``on_state(True)`` once subscribed again.
    """
    if redis_url:
        async for batch in _subscribe_redis(redis_url, on_state or (lambda _up: None)):
            yield batch
        return
    path = socket_path(data_dir)
    loop = asyncio.get_running_loop()
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, str(path))
        except OSError:
            sock.close()
            await asyncio.sleep(0.5)  # no collector (yet): try again
            continue
        try:
            while True:
                message = await loop.sock_recv(sock, RECV_BYTES)
                if not message:
                    break  # the collector stopped
                try:
                    yield decode(message)
                except ValueError as exc:
                    log.error("Bad feed message skipped.", extra={"error": str(exc)})
        finally:
            sock.close()
        await asyncio.sleep(0.2)


async def _subscribe_redis(url: str, on_state: Callable[[bool], None]) -> AsyncIterator[FeedBatch]:
    import redis.asyncio as aioredis

    while True:
        client: Any = aioredis.Redis.from_url(url)
        pubsub: Any = client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            on_state(True)
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is None:
                    continue
                try:
                    yield decode(msg["data"])
                except ValueError as exc:
                    log.error("Bad feed message skipped.", extra={"error": str(exc)})
        except (OSError, aioredis.RedisError) as exc:
            log.warning("Tail feed lost Redis; reconnecting.", extra={"error": str(exc)})
            on_state(False)
            await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
                await client.aclose()
