"""Appending lines to the day files: batching, flushing, crash recovery, a full disk.

The writer is single-threaded by design: one thread owns every open day file, so the order of
lines in a file is the order of the hash chain, with no locks on the hot path. Callers hand it
finished lines with :meth:`ArchiveWriter.add`; :meth:`ArchiveWriter.flush` writes them.

Guarantees:

- a line is written whole or not at all: a failed write (disk full, I/O error) is cut back to the
  last complete line with ftruncate and the lines stay in memory for the next attempt;
- on opening an existing day file (a restart after kill -9 or power loss) a torn last line is cut,
  the chain is resumed from the sidecar's last record and extended over lines written after it;
- a day file shorter than its sidecar says (lost or altered data) is reported loudly, counted as a
  resync, and its chain recomputed from the start with a ``resync`` record, never silently.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import errno
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from logmaster.archive import chain
from logmaster.serverlog import RateLimited

if TYPE_CHECKING:
    from logmaster.collector.feed import Feed

log = logging.getLogger(__name__)

FILE_MODE = 0o640
DIR_MODE = 0o750
IDLE_CLOSE_S = 120.0


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def syncfs(fd: int) -> None:
    """syncfs(2): write every dirty page of the file system holding ``fd`` to disk."""
    if _libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def day_path(root: Path, device: str, day: dt.date) -> Path:
    return root / device / f"{day.year:04d}" / f"{day.month:02d}" / f"{day.day:02d}.log"


SEAL_CHECK_S = 1.0


def unsealed_path(path: Path) -> Path:
    """``path`` while its day is not sealed, else the first supplement ``<DD>.s<k>.log`` that is
    not sealed (nor being sealed): lines never go into a sealed file (archive/seal.py)."""
    dd = path.name.split(".")[0]
    k = 0
    while True:
        stem = dd if k == 0 else f"{dd}.s{k}"
        folder = path.parent
        if (
            not (folder / f"{stem}.manifest.json").exists()
            and not (folder / f"{stem}.sealing").exists()
        ):
            return folder / f"{stem}.log"
        k += 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@dataclass
class WriterStats:
    lines: int = 0
    bytes: int = 0
    torn_bytes_cut: int = 0
    resyncs: int = 0
    write_errors: dict[str, int] = field(default_factory=dict)

    def error(self, exc: OSError) -> str:
        reason = errno.errorcode.get(exc.errno or 0, "EIO")
        self.write_errors[reason] = self.write_errors.get(reason, 0) + 1
        return reason


class DayFile:
    """One device-day: its open file, chain head and the lines not yet written."""

    def __init__(self, path: Path, device: str, day: dt.date, stats: WriterStats) -> None:
        self.path = path
        self.device = device
        self.day = day
        self.stats = stats
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.fd = -1
        self.side_fd = -1
        self.side_size = 0
        self.size = 0
        self.lines = 0
        self.head = chain.genesis(device, day)
        # Chain links written to the day file but not yet to the sidecar.
        self.unrecorded_tags = bytearray()
        self.unrecorded_resync = False
        self.last_write = time.monotonic()
        # Set when the writer forgets this object; holders must ask day_file() again.
        self.retired = False
        self.next_seal_check = 0.0

    # -- opening and recovery ---------------------------------------------------------------

    def open(self) -> None:
        _make_dirs(self.path.parent)
        self.path = unsealed_path(self.path)
        side = chain.sidecar_path(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            self._recover(fd, side)
            self.side_fd = os.open(
                side, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
            )
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.side_size = os.fstat(self.side_fd).st_size
        if self.unrecorded_tags or self.unrecorded_resync:
            self._record()

    def _recover(self, fd: int, side: Path) -> None:
        size = os.fstat(fd).st_size
        sidecar: chain.Sidecar | None = None
        # An empty chain file is a header write that failed (a full disk): nothing to keep.
        if side.exists() and side.stat().st_size > 0:
            try:
                sidecar = chain.read_sidecar(side)
            except chain.SidecarError as exc:
                log.error(
                    "Chain file unreadable; recomputing the chain from the day file.",
                    extra={"file": str(side), "error": str(exc)},
                )
                os.replace(side, side.with_name(side.name + f".bad-{int(time.time())}"))
        if sidecar is None:
            side.write_bytes(chain.header(self.device, self.day))
            os.chmod(side, FILE_MODE)
            if size == 0:
                return
            self.unrecorded_resync = True
            self.stats.resyncs += 1
            start_lines, start_size, head = 0, 0, self.head
        else:
            if sidecar.torn_tail or not side.read_bytes().endswith(b"\n"):
                # A crash tore the last record: drop it, the lines it covered are re-chained below.
                with open(side, "r+b") as fh:
                    fh.truncate(sidecar.valid_size)
                    fh.seek(0, os.SEEK_END)
                    if fh.tell() and not _ends_with_newline(fh):
                        fh.write(b"\n")
            last = sidecar.records[-1] if sidecar.records else None
            start_lines = last.lines if last else 0
            start_size = last.size if last else 0
            head = last.sha256 if last else sidecar.genesis
            if size < start_size:
                log.error(
                    "Day file is shorter than its chain says: data was lost or altered; "
                    "recomputing the chain from the first line and marking the record resync.",
                    extra={"file": str(self.path), "size": size, "chain_size": start_size},
                )
                self.stats.resyncs += 1
                self.unrecorded_resync = True
                start_lines, start_size, head = 0, 0, sidecar.genesis
        tail = _read_from(fd, start_size, size)
        cut = len(tail) - (tail.rfind(b"\n") + 1)
        if cut:
            log.warning(
                "Cut a torn last line left by a crash.",
                extra={"file": str(self.path), "bytes": cut},
            )
            os.ftruncate(fd, size - cut)
            self.stats.torn_bytes_cut += cut
            tail = tail[: len(tail) - cut]
        lines = tail.splitlines(keepends=True)
        self.head = chain.extend(head, lines, self.unrecorded_tags)
        self.lines = start_lines + len(lines)
        self.size = start_size + len(tail)

    # -- writing ----------------------------------------------------------------------------

    def write(self, sync: bool) -> None:
        """Write the pending lines whole, then their chain record; raise OSError on failure."""
        self.write_lines(sync)
        self.write_record(sync)

    def write_lines(self, sync: bool = False) -> None:
        """Write the pending lines whole (cut back on failure); the chain record comes later."""
        if self.fd >= 0 and self.pending and time.monotonic() >= self.next_seal_check:
            self._leave_if_sealed()
        if self.fd < 0:
            self.open()
        if not self.pending:
            return
        tags = bytearray()
        head = chain.extend(self.head, self.pending, tags)
        data = b"".join(self.pending)
        try:
            _write_all(self.fd, data)
            if sync:
                os.fdatasync(self.fd)
        except OSError:
            _cut_back(self.fd, self.size)
            raise
        self.stats.lines += len(self.pending)
        self.stats.bytes += len(data)
        self.size += len(data)
        self.lines += len(self.pending)
        self.head = head
        self.unrecorded_tags += tags
        self.pending = []
        self.pending_bytes = 0
        self.last_write = time.monotonic()

    def _leave_if_sealed(self) -> None:
        """The sealer marks a file before hashing it; later lines go to a supplement."""
        self.next_seal_check = time.monotonic() + SEAL_CHECK_S
        if unsealed_path(self.path) == self.path:
            return
        self.write_record()
        self.close()
        self.size = self.lines = 0
        self.head = chain.genesis(self.device, self.day)

    def write_record(self, sync: bool = False) -> None:
        if self.unrecorded_tags or self.unrecorded_resync:
            self._record(sync)

    def _record(self, sync: bool = False) -> None:
        record = chain.Record(
            self.lines,
            self.size,
            self.head,
            bytes(self.unrecorded_tags),
            _now(),
            self.unrecorded_resync,
        )
        data = record.dumps()
        try:
            _write_all(self.side_fd, data)
            if sync:
                os.fdatasync(self.side_fd)
        except OSError:
            _cut_back(self.side_fd, self.side_size)
            raise
        self.side_size += len(data)
        self.unrecorded_tags = bytearray()
        self.unrecorded_resync = False

    def close(self) -> None:
        for fd in (self.fd, self.side_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.side_fd = -1


def _make_dirs(path: Path) -> None:
    """mkdir -p giving every new folder DIR_MODE (Path.mkdir gives parents the default)."""
    if path.is_dir():
        return
    _make_dirs(path.parent)
    path.mkdir(mode=DIR_MODE, exist_ok=True)


def _cut_back(fd: int, size: int) -> None:
    """Remove a partial write so the file ends with a whole line again."""
    try:
        os.ftruncate(fd, size)
    except OSError as exc:  # pragma: no cover - ftruncate to a smaller size does not need space
        log.critical("Could not cut a partial write back.", extra={"error": str(exc)})


def _read_from(fd: int, start: int, end: int) -> bytes:
    chunks = []
    pos = start
    while pos < end:
        chunk = os.pread(fd, min(8 << 20, end - pos), pos)
        if not chunk:
            break
        chunks.append(chunk)
        pos += len(chunk)
    return b"".join(chunks)


def _ends_with_newline(fh: object) -> bool:
    import io

    assert isinstance(fh, io.BufferedRandom)
    fh.seek(-1, os.SEEK_END)
    last = fh.read(1)
    fh.seek(0, os.SEEK_END)
    return last == b"\n"


class ArchiveWriter:
    """Owns the day files of one archive directory. Not thread-safe: one thread calls it."""

    def __init__(self, root: Path, fsync: str = "interval", max_open_files: int = 4096) -> None:
        self.root = root
        self.mode = fsync
        self._root: int | None = None
        self.max_open_files = max_open_files
        self.files: dict[tuple[str, dt.date], DayFile] = {}
        self.dirty: dict[tuple[str, dt.date], DayFile] = {}
        self.stats = WriterStats()
        self.pending_bytes = 0
        self.failing = False
        self._error_log = RateLimited(10.0)
        # Live tail (collector/feed.py): offered every written piece; None or inactive costs
        # one attribute test per file per flush.
        self.feed: Feed | None = None
        root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    def day_file(self, device: str, day: dt.date) -> DayFile:
        """The one DayFile of a device-day (opened lazily, at its first flush)."""
        key = (device, day)
        df = self.files.get(key)
        if df is None:
            df = DayFile(day_path(self.root, device, day), device, day, self.stats)
            self.files[key] = df
        return df

    def add(self, df: DayFile, line: bytes) -> None:
        if not df.pending:
            self.dirty[(df.device, df.day)] = df
        df.pending.append(line)
        df.pending_bytes += len(line)
        self.pending_bytes += len(line)

    def flush(self) -> bool:
        """Write every pending line; return False if some stay pending (they are retried).

        With fsync "interval" the order is: every file's lines, one syncfs(2) for the whole
        archive file system, then every file's chain record. One sync per flush instead of two
        per file keeps 1,000 open day files cheap, and a record is never on disk before the
        lines it covers (it becomes durable at the next flush's sync).
        """
        ok = True
        written: list[DayFile] = []
        each = self.mode == "message"
        feed = self.feed
        for df in list(self.dirty.values()):
            before = df.pending_bytes
            lines = df.pending
            try:
                df.write_lines(sync=each)
            except OSError as exc:
                # Some lines may have been written before the failure: they left the buffer.
                self.pending_bytes -= before - df.pending_bytes
                ok = False
                self._report(df.path, exc)
                continue
            self.pending_bytes -= before
            written.append(df)
            if feed is not None and feed.active and lines:
                rel = df.path.relative_to(self.root).as_posix()  # a supplement after a seal too
                feed.publish(df.device, rel, df.size - before, lines)
        if written and self.mode == "interval":
            try:
                syncfs(self._root_fd())
            except OSError as exc:
                ok = False
                self._report(self.root, exc)
                written = []  # records wait until their lines are known to be on disk
        for df in written:
            try:
                df.write_record(sync=each)
            except OSError as exc:
                ok = False
                self._report(df.path, exc)
                continue
            self.dirty.pop((df.device, df.day), None)
        if ok and self.failing:
            log.warning("Archive writable again; buffered lines written.")
        self.failing = not ok
        self._close_idle()
        return ok

    def _report(self, path: Path, exc: OSError) -> None:
        reason = self.stats.error(exc)
        if self._error_log.ready():
            log.error(
                "Cannot write to the archive; lines are kept in memory and retried.",
                extra={
                    "file": str(path),
                    "reason": reason,
                    "error": str(exc),
                    "buffered_bytes": self.pending_bytes,
                    "suppressed": self._error_log.suppressed,
                },
            )

    def _root_fd(self) -> int:
        if self._root is None:
            self._root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._root

    def _close_idle(self) -> None:
        if len(self.files) <= self.max_open_files and not self._idle_due():
            return
        now = time.monotonic()
        by_age = sorted(self.files.items(), key=lambda kv: kv[1].last_write)
        excess = len(self.files) - self.max_open_files
        for i, (key, df) in enumerate(by_age):
            if df.pending or df.unrecorded_tags:
                continue
            if i < excess or now - df.last_write > IDLE_CLOSE_S:
                df.close()
                df.retired = True
                del self.files[key]

    _next_idle_check = 0.0

    def _idle_due(self) -> bool:
        now = time.monotonic()
        if now >= self._next_idle_check:
            self._next_idle_check = now + IDLE_CLOSE_S / 4
            return True
        return False

    @property
    def open_files(self) -> int:
        return sum(1 for df in self.files.values() if df.fd >= 0)

    def close(self) -> None:
        self.flush()
        if self.mode == "interval" and self._root is not None:
            # The last flush's chain records are not synced yet (their sync is the next flush).
            try:
                syncfs(self._root)
            except OSError as exc:
                self._report(self.root, exc)
        for df in self.files.values():
            df.close()
        self.files.clear()
        if self._root is not None:
            os.close(self._root)
            self._root = None
