"""The hand-off from receivers to the archive: one queue, one writer thread.

Receivers (UDP threads, the TCP/TLS event loop, or receiver processes through a pipe) ``put``
batches of messages; the archive thread resolves each sender to its device, formats the archive
line in the device's timezone, and appends it to the device's day file, flushing every
``flush_interval_ms``.

Memory is bounded by ``buffer_max_bytes``: messages queued plus lines not yet written. When that
is reached :meth:`Ingest.full` turns true and receivers hold back (TCP/TLS stop reading the
connection, UDP leaves datagrams in the kernel buffer), so a disk that is slow or full slows the
senders down instead of losing lines silently.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from logmaster.archive.line import format_line
from logmaster.archive.writer import ArchiveWriter
from logmaster.collector.devices import DeviceEntry, Registry
from logmaster.collector.sink import Message

log = logging.getLogger(__name__)


REFRESH_S = 2.0
SEEN_S = 10.0


class Ingest:
    def __init__(
        self,
        registry: Registry,
        writer: ArchiveWriter,
        *,
        flush_interval_ms: int = 200,
        buffer_max_bytes: int = 64 << 20,
        fsync_each_message: bool = False,
    ) -> None:
        self.registry = registry
        self.writer = writer
        self.interval = flush_interval_ms / 1000
        self.buffer_max = buffer_max_bytes
        self.each_message = fsync_each_message
        self.queue: queue.SimpleQueue[tuple[list[Message], int] | None] = queue.SimpleQueue()
        # Updated without a lock by several threads: an estimate, good enough for a high-water
        # mark (it is reconciled exactly in drain()).
        self.queued_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.periodic: list[Callable[[], Any]] = []

    # -- receivers' side --------------------------------------------------------------------

    def put(self, batch: list[Message], nbytes: int) -> None:
        self.queued_bytes += nbytes
        self.queue.put((batch, nbytes))

    def full(self) -> bool:
        return self.queued_bytes + self.writer.pending_bytes >= self.buffer_max

    def wait_room(self, stop: threading.Event | None = None) -> None:
        """Block a receiver thread until there is room again."""
        while self.full() and not (stop and stop.is_set()) and not self._stop.is_set():
            time.sleep(0.005)

    # -- archive thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="archive", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write everything received so far, then stop the archive thread."""
        self._stop.set()
        self.queue.put(None)
        if self._thread is not None:
            self._thread.join()

    def run(self) -> None:
        writer = self.writer
        get = self.queue.get
        now = time.monotonic()
        next_flush = now + self.interval
        next_refresh = now + REFRESH_S
        next_seen = now + SEEN_S
        while True:
            item: tuple[list[Message], int] | None = None
            # While the writer cannot empty its buffer (a full disk), take nothing new: the
            # queue then fills and receivers hold back.
            if writer.pending_bytes < self.buffer_max:
                try:
                    item = get(timeout=max(0.0, next_flush - time.monotonic()))
                except queue.Empty:
                    item = None
            else:
                time.sleep(max(0.0, next_flush - time.monotonic()))
            if item is not None:
                batch, nbytes = item
                self.queued_bytes -= nbytes
                self.archive(batch)
            elif self._stop.is_set() and self.queue.empty():
                self._final_flush()
                return
            now = time.monotonic()
            if now >= next_flush:
                writer.flush()
                next_flush = now + self.interval
                if now >= next_refresh:
                    next_refresh = now + REFRESH_S
                    self._safely(self.registry.refresh)
                    for task in self.periodic:
                        self._safely(task)
                if now >= next_seen:
                    next_seen = now + SEEN_S
                    self._safely(self.registry.mark_seen)

    def _final_flush(self) -> None:
        deadline = time.monotonic() + 30
        while not self.writer.flush() and time.monotonic() < deadline:
            time.sleep(0.5)
        if self.writer.pending_bytes:
            log.critical(
                "Stopping with lines the archive could not take.",
                extra={"buffered_bytes": self.writer.pending_bytes},
            )
        self._safely(self.registry.save_pending)
        self._safely(self.registry.mark_seen)

    @staticmethod
    def _safely(task: Callable[[], Any]) -> None:
        try:
            task()
        except Exception as exc:
            # The metadata database being down must not stop the archive.
            log.error(
                "Periodic task failed; the archive goes on.",
                extra={"task": getattr(task, "__name__", str(task)), "error": str(exc)},
            )

    def archive(self, batch: list[Message]) -> None:
        """Turn messages into archive lines. The hot loop: keep work out of it."""
        registry = self.registry
        cache = registry.cache
        writer = self.writer
        add = writer.add
        for ns, ip, raw, marker in batch:
            dev = cache.get(ip)
            if not isinstance(dev, DeviceEntry):
                dev = registry.resolve(ip, raw)
            stats = dev.stats
            if dev.status == "rejected":
                stats.rejected += 1
                continue
            sec, frac = divmod(ns, 1_000_000_000)
            stamp = dev.clock.stamp(sec)
            df = dev.day_file
            if df is None or df.day != stamp.day or df.retired:
                df = dev.day_file = writer.day_file(dev.slug, stamp.day)
            add(df, format_line(stamp, frac // 1000, ip.encode(), raw, marker))
            stats.received += 1
            stats.bytes += len(raw)
            if marker:
                stats.truncated += marker.startswith(b"\\[truncated")
            dev.seen = True
            if self.each_message:
                writer.flush()
