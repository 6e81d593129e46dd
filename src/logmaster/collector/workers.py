"""Receiver processes for ``--workers N``: they receive, the archive process writes.

Each worker binds the same ports (SO_REUSEPORT lets the kernel spread senders across them) and
sends its batches, pickled, over a private pipe to the archive process, which alone writes the
day files so every file keeps a single, ordered hash chain. A worker's own buffer is bounded;
when the archive process stops reading the pipe, the worker's sink fills and its TCP/TLS
connections stop being read: back-pressure crosses the process boundary.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from logmaster.collector.ingest import Ingest
from logmaster.collector.sink import Message
from logmaster.collector.stats import ListenerStats
from logmaster.config import CollectorSettings

log = logging.getLogger(__name__)

WORKER_BUFFER = 16 << 20
STATS_S = 1.0
MERGE_BYTES = 1 << 20


class PipeSink:
    """A worker's sink: a bounded local queue drained into the pipe by a sender thread."""

    def __init__(self, conn: Connection, max_bytes: int = WORKER_BUFFER) -> None:
        self.conn = conn
        self.max_bytes = max_bytes
        self.queue: queue.SimpleQueue[tuple[list[Message], int]] = queue.SimpleQueue()
        self.queued = 0
        self.stopping = threading.Event()

    def put(self, batch: list[Message], nbytes: int) -> None:
        self.queued += nbytes
        self.queue.put((batch, nbytes))

    def full(self) -> bool:
        return self.queued >= self.max_bytes

    def wait_room(self, stop: threading.Event | None = None) -> None:
        while self.full() and not (stop and stop.is_set()):
            time.sleep(0.005)

    def run_sender(self, stats: Any) -> None:
        """Send batches (merged up to ~1 MiB) and, every second, the listener counters."""
        next_stats = 0.0
        while True:
            try:
                first = self.queue.get(timeout=0.2)
            except queue.Empty:
                first = None
            batches: list[tuple[list[Message], int]] = []
            size = 0
            if first is not None:
                batches.append(first)
                size = first[1]
                while size < MERGE_BYTES:
                    try:
                        item = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    batches.append(item)
                    size += item[1]
            if batches:
                self.conn.send_bytes(pickle.dumps(("b", batches), protocol=5))
                self.queued -= size
            now = time.monotonic()
            if now >= next_stats or (self.stopping.is_set() and self.queue.empty()):
                next_stats = now + STATS_S
                self.conn.send_bytes(pickle.dumps(("s", [s.snapshot() for s in stats()])))
                if self.stopping.is_set() and self.queue.empty():
                    return


def worker_main(settings: dict[str, Any], index: int, conn: Connection, level: str) -> None:
    """Entry point of a receiver process."""
    from logmaster import serverlog
    from logmaster.collector.receivers import Receivers

    serverlog.setup(level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    cfg = CollectorSettings.model_validate(settings)
    sink = PipeSink(conn)
    receivers = Receivers(cfg, sink)
    try:
        receivers.start()
    except Exception as exc:
        conn.send_bytes(pickle.dumps(("e", str(exc))))
        return
    conn.send_bytes(pickle.dumps(("r", receivers.endpoints)))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_parent() -> None:
        # The parent writes "stop" or dies; either way the pipe becomes readable.
        with contextlib.suppress(EOFError, OSError):
            conn.recv_bytes()
        stop.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    sender = threading.Thread(target=sink.run_sender, args=(lambda: receivers.stats,), daemon=True)
    sender.start()
    stop.wait()
    receivers.stop()
    sink.stopping.set()
    sender.join(timeout=30)
    log.info("Receiver process stopped.", extra={"worker": index, "pid": os.getpid()})


class WorkerPool:
    """Starts, feeds from and restarts the receiver processes."""

    def __init__(self, settings: CollectorSettings, count: int, ingest: Ingest, level: str):
        self.settings = settings
        self.count = count
        self.ingest = ingest
        self.level = level
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list[Any] = [None] * count
        self.conns: list[Connection | None] = [None] * count
        self.snapshots: dict[int, list[dict[str, Any]]] = {}
        self.endpoints: list[str] = []
        self.readers: list[threading.Thread] = []
        self.stopping = False

    def start(self) -> None:
        for i in range(self.count):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(
            target=worker_main,
            args=(self.settings.model_dump(mode="json"), i, child, self.level),
            name=f"logmaster-receiver-{i}",
            daemon=True,
        )
        proc.start()
        child.close()
        kind, payload = pickle.loads(parent.recv_bytes())  # noqa: S301 - our own child
        if kind == "e":
            proc.join()
            raise RuntimeError(f"receiver process {i} could not start: {payload}")
        self.endpoints = payload
        self.procs[i] = proc
        self.conns[i] = parent
        reader = threading.Thread(
            target=self._read, args=(i, parent), name=f"pipe-{i}", daemon=True
        )
        reader.start()
        self.readers.append(reader)

    def _read(self, i: int, conn: Connection) -> None:
        ingest = self.ingest
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return
            kind, payload = pickle.loads(data)  # noqa: S301 - our own child over a private pipe
            if kind == "b":
                for batch, nbytes in payload:
                    ingest.wait_room()
                    ingest.put(batch, nbytes)
            elif kind == "s":
                self.snapshots[i] = payload

    def supervise(self) -> None:
        """Restart receiver processes that died (called periodically)."""
        for i, proc in enumerate(self.procs):
            if proc is not None and not proc.is_alive() and not self.stopping:
                log.error(
                    "Receiver process died; restarting it.",
                    extra={"worker": i, "exitcode": proc.exitcode},
                )
                self._spawn(i)

    @property
    def stats(self) -> list[ListenerStats]:
        from logmaster.collector.stats import merge

        return merge(s for snaps in list(self.snapshots.values()) for s in snaps)

    def stop(self) -> None:
        self.stopping = True
        for conn in self.conns:
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.send_bytes(b"stop")
        for proc in self.procs:
            if proc is not None:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.kill()
        # Everything the workers sent before exiting is now read into the ingest queue.
        for reader in self.readers:
            reader.join(timeout=30)
