"""Microbenchmark of UDP receive paths in CPython, and of the per-message archive cost.

Why the collector's UDP listener is a plain non-blocking ``recvfrom`` loop in a thread
(src/logmaster/collector/udp.py) and not an asyncio datagram endpoint: a receiving socket is
filled with N datagrams (default 100,000 of 200 bytes) while nobody reads it, then drained by
each candidate, and the time per datagram is printed with its ratio to the plain blocking loop:

(a) plain blocking ``sock.recvfrom(65536)`` loop, datagrams discarded;
(b) ``recvfrom_into`` a reused bytearray, plus a ``bytes`` copy of each datagram;
(c) non-blocking drain into a list of ``(time_ns, ip, bytes)`` tuples (the collector's loop);
(d) CPython's stock asyncio ``create_datagram_endpoint`` protocol;
(e) the same protocol on uvloop.

The receive buffer is forced to 256 MiB with SO_RCVBUFFORCE (needs root / CAP_NET_ADMIN;
without it the kernel caps SO_RCVBUF at net.core.rmem_max and the fill reports the drops).
Only the drain is timed; every trial uses a fresh socket; the best of ``--repeat`` trials is shown.

It also times what the archive thread does per message once it has it: formatting the archive
line (``logmaster.archive.line.format_line``, timestamp split included) and extending the SHA-256
hash chain (``logmaster.archive.chain.extend``).

Prints figures only and asserts nothing. Run::

    .venv/bin/python bench/recv_paths.py            # N=100000, 200-byte datagrams, best of 3
    .venv/bin/python bench/recv_paths.py --count 20000 --repeat 5 --json

Figures on the 2-core development machine: plain loop ~1.2 us, stock asyncio ~15 us,
uvloop ~1.2 us per datagram.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RCVBUF = 256 << 20
MAX_DATAGRAM = 65536


@dataclass
class Result:
    name: str
    label: str
    us_per_msg: float | None
    received: int
    note: str = ""
    ratio: float | None = None
    warm_us_per_msg: float | None = None
    warm_ratio: float | None = None


class Trial:
    """A receiving socket holding ``count`` datagrams that nobody has read yet."""

    def __init__(self, count: int, payload: bytes) -> None:
        self.count = count
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except PermissionError:
            self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.rx.bind(("127.0.0.1", 0))
        self.drops_before = kernel_drops(self.rx)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tx.connect(self.rx.getsockname())
            send = tx.send
            for _ in range(count):
                send(payload)
        finally:
            tx.close()
        self.dropped = kernel_drops(self.rx) - self.drops_before

    @property
    def queued(self) -> int:
        return self.count - self.dropped

    def close(self) -> None:
        self.rx.close()


def kernel_drops(sock: socket.socket) -> int:
    """The ``drops`` column of /proc/net/udp for this socket."""
    inode = str(os.fstat(sock.fileno()).st_ino)
    try:
        with open("/proc/net/udp") as fh:
            next(fh)
            for row in fh:
                cols = row.split()
                if len(cols) > 12 and cols[9] == inode:
                    return int(cols[12])
    except OSError:
        pass
    return 0


# -- the drains: each returns (seconds, datagrams received) -----------------------------------


def kernel_timeout(sock: socket.socket, seconds: int = 1) -> None:
    """Let a blocking recv give up (EAGAIN) if a datagram is missing, without a Python timeout.

    ``sock.settimeout()`` would make every call a poll() plus a non-blocking recv, which is not
    the plain blocking loop being measured; SO_RCVTIMEO keeps the socket blocking in the kernel.
    """
    sock.setblocking(True)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, 0))


def drain_blocking(trial: Trial) -> tuple[float, int]:
    sock = trial.rx
    kernel_timeout(sock)
    recv = sock.recvfrom
    n = 0
    start = time.perf_counter()
    try:
        for _ in range(trial.queued):
            recv(MAX_DATAGRAM)
            n += 1
    except BlockingIOError:
        pass
    return time.perf_counter() - start, n


def drain_into(trial: Trial) -> tuple[float, int]:
    sock = trial.rx
    kernel_timeout(sock)
    buf = bytearray(MAX_DATAGRAM)
    view = memoryview(buf)
    recv_into = sock.recvfrom_into
    n = 0
    start = time.perf_counter()
    try:
        for _ in range(trial.queued):
            size, _addr = recv_into(buf)
            bytes(view[:size])
            n += 1
    except BlockingIOError:
        pass
    return time.perf_counter() - start, n


def drain_nonblocking(trial: Trial) -> tuple[float, int]:
    sock = trial.rx
    sock.setblocking(False)
    recv = sock.recvfrom
    clock = time.time_ns
    batch: list[tuple[int, str, bytes]] = []
    append = batch.append
    start = time.perf_counter()
    try:
        while True:
            data, addr = recv(MAX_DATAGRAM)
            append((clock(), addr[0], data))
    except BlockingIOError:
        pass
    return time.perf_counter() - start, len(batch)


class _Counting(asyncio.DatagramProtocol):
    def __init__(self, expected: int, done: asyncio.Future[None]) -> None:
        self.expected = expected
        self.done = done
        self.count = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.count += 1
        if self.count >= self.expected and not self.done.done():
            self.done.set_result(None)


async def _asyncio_drain(trial: Trial) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    trial.rx.setblocking(False)
    start = time.perf_counter()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Counting(trial.queued, done), sock=trial.rx
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done, timeout=max(5.0, trial.queued * 1e-4))
    elapsed = time.perf_counter() - start
    transport.abort()  # closes trial.rx
    return elapsed, proto.count


def drain_asyncio(trial: Trial) -> tuple[float, int]:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_asyncio_drain(trial))
    finally:
        loop.close()


def drain_uvloop(trial: Trial) -> tuple[float, int]:
    import uvloop

    loop = uvloop.new_event_loop()
    try:
        result: tuple[float, int] = loop.run_until_complete(_asyncio_drain(trial))
        return result
    finally:
        loop.close()


PATHS: list[tuple[str, str, Callable[[Trial], tuple[float, int]]]] = [
    ("a", "blocking recvfrom(65536) loop", drain_blocking),
    ("b", "recvfrom_into reused bytearray + bytes copy", drain_into),
    ("c", "non-blocking drain into list of (time_ns, ip, bytes)", drain_nonblocking),
    ("d", "stock asyncio create_datagram_endpoint", drain_asyncio),
    ("e", "uvloop create_datagram_endpoint", drain_uvloop),
]


def measure_path(
    name: str,
    label: str,
    drain: Callable[[Trial], tuple[float, int]],
    count: int,
    payload: bytes,
    repeat: int,
) -> Result:
    best: float | None = None
    received = 0
    notes: list[str] = []
    for _ in range(repeat):
        trial = Trial(count, payload)
        try:
            if trial.dropped:
                notes.append(f"{trial.dropped} dropped at fill (receive buffer too small?)")
            gc.collect()
            gc.disable()
            try:
                seconds, n = drain(trial)
            finally:
                gc.enable()
        except ImportError as exc:
            return Result(name, label, None, 0, f"skipped: {exc}")
        finally:
            trial.close()
        if n != trial.queued:
            notes.append(f"received {n} of {trial.queued}")
        if n:
            per = seconds / n * 1e6
            best = per if best is None else min(best, per)
            received = n
    return Result(name, label, best, received, "; ".join(dict.fromkeys(notes)))


# -- archive formatting cost ------------------------------------------------------------------


def measure_archive(count: int, size: int, repeat: int) -> dict[str, float]:
    """Per-message microseconds of format_line and of the hash chain, best of ``repeat``."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from logmaster.archive import chain
    from logmaster.archive.line import Clock, format_line
    from logmaster.loadgen import messages

    gen = messages(size, 0, None)
    now = time.time_ns()
    # One message per 10 us of receive time, like a 100k msg/s stream.
    batch = [(now + i * 10_000, "127.0.0.1", next(gen), b"") for i in range(count)]
    best_fmt = best_chain = float("inf")
    for _ in range(repeat):
        clock = Clock(ZoneInfo("Europe/Istanbul"))
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            lines: list[bytes] = []
            add = lines.append
            for ns, ip, raw, marker in batch:
                sec, frac = divmod(ns, 1_000_000_000)
                stamp = clock.stamp(sec)
                add(format_line(stamp, frac // 1000, ip.encode(), raw, marker))
            mid = time.perf_counter()
            tags = bytearray()
            chain.extend(chain.genesis("bench", dt.date.today()), lines, tags)
            end = time.perf_counter()
        finally:
            gc.enable()
        best_fmt = min(best_fmt, (mid - start) / count * 1e6)
        best_chain = min(best_chain, (end - mid) / count * 1e6)
    return {
        "format_line_us": best_fmt,
        "chain_extend_us": best_chain,
        "total_us": best_fmt + best_chain,
        "line_bytes": len(lines[0]) if lines else 0,
    }


# -- main -------------------------------------------------------------------------------------


def rcvbuf_granted() -> tuple[int, bool]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        forced = True
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except PermissionError:
            forced = False
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        return s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), forced


def warm_heap(count: int, size: int) -> None:
    """Leave the heap the way a running collector has it: ``count`` messages held, then freed.

    It matters for (d): asyncio's datagram transport receives into a fresh 256 KiB buffer
    (``max_size``), above glibc's initial mmap threshold, so on a fresh heap every datagram costs
    an mmap + munmap (and page faults); on a heap with free space the buffer comes from it.
    """
    held = [
        (time.time_ns(), "127.0.0.1", bytes(size) + i.to_bytes(4, "little")) for i in range(count)
    ]
    del held


def run_child(letter: str, count: int, size: int, repeat: int, warm: bool) -> Result:
    """Measure one path in a fresh interpreter, so no path inherits another's heap."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        letter,
        "--count",
        str(count),
        "--size",
        str(size),
        "--repeat",
        str(repeat),
    ]
    if warm:
        cmd.append("--warm")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        label = next(lbl for n, lbl, _ in PATHS if n == letter)
        return Result(letter, label, None, 0, f"failed: {done.stderr.strip()[-200:]}")
    return Result(**json.loads(done.stdout))


def child(letter: str, count: int, size: int, repeat: int, warm: bool) -> int:
    payload = b"<134>1 " + b"x" * max(0, size - 7)
    name, label, drain = next(p for p in PATHS if p[0] == letter)
    if warm:
        warm_heap(count, size)
    print(json.dumps(asdict(measure_path(name, label, drain, count, payload, repeat))))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time UDP receive paths (per datagram) and the archive line + chain cost.",
    )
    parser.add_argument("--count", type=int, default=100_000, help="datagrams per trial")
    parser.add_argument("--size", type=int, default=200, help="bytes per datagram")
    parser.add_argument("--repeat", type=int, default=3, help="trials per path; best is shown")
    parser.add_argument(
        "--paths", default="abcde", help="which receive paths to run (letters a-e, default all)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.count < 1 or args.size < 1 or args.repeat < 1:
        parser.error("--count, --size and --repeat must be positive")
    if args.child:
        return child(args.child, args.count, args.size, args.repeat, args.warm)

    granted, forced = rcvbuf_granted()
    results: list[Result] = []
    for name, _label, _drain in PATHS:
        if name in args.paths:
            r = run_child(name, args.count, args.size, args.repeat, warm=False)
            warm = run_child(name, args.count, args.size, args.repeat, warm=True)
            r.warm_us_per_msg = warm.us_per_msg
            if warm.note:
                r.note = "; ".join(filter(None, [r.note, f"warm: {warm.note}"]))
            results.append(r)
    base = next((r for r in results if r.name == "a"), None)
    for r in results:
        if base and base.us_per_msg and r.us_per_msg:
            r.ratio = r.us_per_msg / base.us_per_msg
        if base and base.warm_us_per_msg and r.warm_us_per_msg:
            r.warm_ratio = r.warm_us_per_msg / base.warm_us_per_msg
    archive = measure_archive(args.count, args.size, args.repeat)
    header = {
        "count": args.count,
        "size": args.size,
        "repeat": args.repeat,
        "rcvbuf_granted": granted,
        "rcvbuf_forced": forced,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(
            json.dumps(
                {**header, "paths": [asdict(r) for r in results], "archive": archive}, indent=2
            )
        )
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 130)
    console.print(
        f"UDP receive paths: {args.count:,} datagrams of {args.size} B queued, then drained; "
        f"best of {args.repeat}. SO_RCVBUF granted {granted / (1 << 20):.0f} MiB"
        f"{'' if forced else ' (not root: SO_RCVBUFFORCE refused)'}; "
        f"Python {header['python']}, {header['cpus']} CPUs.",
        highlight=False,
    )
    table = Table(
        "",
        "receive path",
        "us/datagram",
        "vs (a)",
        "warm heap us/datagram",
        "vs (a)",
        "note",
    )

    def us(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else "-"

    def ratio(value: float | None) -> str:
        return f"{value:.2f}x" if value is not None else "-"

    for r in results:
        table.add_row(
            f"({r.name})",
            r.label,
            us(r.us_per_msg),
            ratio(r.ratio),
            us(r.warm_us_per_msg),
            ratio(r.warm_ratio),
            r.note,
        )
    console.print(table)
    console.print(
        "Each path runs in a fresh interpreter. Warm heap: that interpreter first held and "
        f"freed {args.count:,} messages, as a running collector has; it changes (d), whose "
        "256 KiB receive buffer is otherwise an mmap + munmap per datagram.",
        highlight=False,
    )
    arch = Table("archive thread, per message", "us")
    arch.add_row(
        "format_line (timestamp split + escape + format)", f"{archive['format_line_us']:.2f}"
    )
    arch.add_row("chain.extend (SHA-256 link + 8-byte tag)", f"{archive['chain_extend_us']:.2f}")
    arch.add_row("total", f"{archive['total_us']:.2f}")
    console.print(arch)
    console.print(
        f"(archive line of a {args.size} B message: {archive['line_bytes']:.0f} B; "
        "writing it to the day file is not included)",
        highlight=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
