"""Indexer processes: one per share of the devices, so indexing uses every core.

Parsing is CPU-bound Python (about 40 µs a line) and a SQLite file has one writer, so one
process tops out below 20,000 lines/s. With ``index.workers = N`` (N > 1) this module starts N
child processes; child k indexes only the devices with ``shard_of(device, N) == k`` and parses
and writes them itself (the SQLite index gives each shard its own files, PostgreSQL takes
concurrent writers). Nothing crosses processes but a small stats record each second: no parsed
event is pickled, which cost a quarter of the parse time when one writer took batches from
parse workers.

Each child stops when the parent asks (an event), and dies with the parent (PR_SET_PDEATHSIG,
plus a check of its parent pid): a kill -9 of ``logmaster index`` leaves no indexer behind that
would race the next one. A transaction cut short that way is rolled back; its lines are indexed
again from the checkpoint by the next start, exactly once.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from typing import Any

from logmaster import serverlog
from logmaster.config import Settings
from logmaster.index.indexer import Indexer, IndexerStats

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 0.5
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent-pid check below still applies
        pass


def lower_priority(settings: Settings) -> None:
    """Lower this process's CPU priority by ``index.nice``.

    Parsing takes all the CPU it can get; an operator's search or the collector's receiving
    must not queue behind it. Called before any thread starts (Linux nice is per thread; new
    threads inherit it).
    """
    if settings.index.nice:
        try:
            os.nice(settings.index.nice)
        except OSError as exc:  # pragma: no cover - raising priority is refused, lowering never
            log.warning("Could not lower the indexer's priority.", extra={"error": str(exc)})


def _child(
    settings_json: dict[str, Any],
    share: tuple[int, int],
    once: bool,
    stop: Any,
    stats_queue: Any,
) -> None:
    _die_with_parent()
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings.model_validate(settings_json)
    serverlog.setup(settings.log_level, settings.log_format)
    lower_priority(settings)
    indexer = Indexer.from_settings(settings, share=share)
    local_stop = threading.Event()

    def report() -> None:
        last = False
        while True:
            if stop.is_set() or os.getppid() != parent:
                local_stop.set()
            last = last or local_stop.is_set()
            st = indexer.stats
            stats_queue.put(
                (
                    share[0],
                    st.lines,
                    st.batches,
                    st.newest_received,
                    st.bytes_behind,
                    st.retries,
                    dict(st.failures),
                )
            )
            if last:
                return  # the final figures were just sent
            local_stop.wait(STATS_INTERVAL_S)

    reporter = threading.Thread(target=report, name="indexer-stats", daemon=True)
    reporter.start()
    try:
        if once:
            indexer.catch_up()
        else:
            indexer.run(local_stop)
    finally:
        local_stop.set()
        reporter.join()
        indexer.close()


class IndexerGroup:
    """``workers`` indexer processes as one indexer: ``catch_up``, ``run``, ``stats``, ``close``.

    With one worker (or zero) the indexer runs in this process, as before there were shares.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.n = max(1, settings.index.workers)
        self.single: Indexer | None = Indexer.from_settings(settings) if self.n == 1 else None
        self._ctx = multiprocessing.get_context("spawn")
        self._queue: Any = self._ctx.Queue()
        self._stop: Any = self._ctx.Event()
        self._latest: dict[int, tuple[int, int, float, int, int, dict[str, int]]] = {}
        # What children that died and were restarted had counted (counters never go back).
        self._retired = IndexerStats()
        self._procs: dict[int, Any] = {}

    @property
    def stats(self) -> IndexerStats:
        """The sum of every child's stats (the newest line and the backlog: their maximum)."""
        if self.single is not None:
            return self.single.stats
        self._drain()
        old = self._retired
        total = IndexerStats(old.lines, dict(old.failures), old.batches, old.newest_received)
        total.retries = old.retries
        for lines, batches, newest, behind, retries, failures in self._latest.values():
            total.retries += retries
            total.lines += lines
            total.batches += batches
            total.newest_received = max(total.newest_received, newest)
            total.bytes_behind += behind
            for device, n in failures.items():
                total.failures[device] = total.failures.get(device, 0) + n
        return total

    def _drain(self) -> None:
        try:
            while True:
                k, *rest = self._queue.get_nowait()
                self._latest[k] = tuple(rest)
        except queue.Empty:
            pass

    def _start(self, k: int, once: bool) -> None:
        if k in self._latest:  # a restart: keep what the dead child had counted
            lines, batches, newest, _, retries, failures = self._latest.pop(k)
            self._retired.retries += retries
            self._retired.lines += lines
            self._retired.batches += batches
            self._retired.newest_received = max(self._retired.newest_received, newest)
            for device, n in failures.items():
                self._retired.failures[device] = self._retired.failures.get(device, 0) + n
        proc = self._ctx.Process(
            target=_child,
            args=(
                self.settings.model_dump(mode="json"),
                (k, self.n),
                once,
                self._stop,
                self._queue,
            ),
            name=f"logmaster-indexer-{k}",
        )
        proc.start()
        self._procs[k] = proc

    def catch_up(self) -> int:
        """Index everything not indexed yet (all shares at once); return the lines indexed."""
        if self.single is not None:
            return self.single.catch_up()
        for k in range(self.n):
            self._start(k, once=True)
        failed = []
        for k, proc in self._procs.items():
            while proc.is_alive():
                proc.join(0.2)
                self._drain()  # a full queue would block the child's exit
            if proc.exitcode != 0:
                failed.append(k)
        self._drain()
        self._procs.clear()
        if failed:
            raise RuntimeError(f"indexer processes {failed} failed; see their log")
        return self.stats.lines

    def run(self, stop: threading.Event) -> None:
        """Index until ``stop`` is set; a child that dies is restarted (from its checkpoints)."""
        if self.single is not None:
            lower_priority(self.settings)  # this process is the indexer (index.workers = 1)
            self.single.run(stop)
            return
        for k in range(self.n):
            self._start(k, once=False)
        while not stop.wait(1.0):
            self._drain()
            for k, proc in list(self._procs.items()):
                if not proc.is_alive():
                    log.error(
                        "Indexer process died; restarting it.",
                        extra={"share": k, "exitcode": proc.exitcode},
                    )
                    self._start(k, once=False)
        self._stop.set()
        deadline = time.monotonic() + 60
        for proc in self._procs.values():
            while proc.is_alive() and time.monotonic() < deadline:
                proc.join(0.2)
                self._drain()
            if proc.is_alive():
                proc.kill()
        self._procs.clear()

    def close(self) -> None:
        if self.single is not None:
            self.single.close()
        for proc in self._procs.values():
            proc.kill()
        self._procs.clear()
