"""kill -9 in the middle of TCP ingest, and a full disk pushing back on a TCP sender."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from collector_support import (
    entries,
    metric,
    octet,
    remount,
    rss_kib,
    stop_process,
    tmpfs,
    verify_cli,
    wait_entries,
    written_entries,
)

from logmaster.archive.line import parse_line
from logmaster.archive.verify import day_files
from logmaster.collector.service import Collector
from support import CollectorProcess, Ports, archived_lines, wait_for


@pytest.fixture
def spawn(
    spawn_collector: Callable[..., CollectorProcess],
) -> Iterator[Callable[[list[str]], CollectorProcess]]:
    """spawn_collector whose processes are killed and whose output pipes are closed at the end."""
    procs: list[CollectorProcess] = []

    def start(args: list[str]) -> CollectorProcess:
        procs.append(spawn_collector(args))
        return procs[-1]

    yield start
    for p in procs:
        stop_process(p, kill=True)


class Sender(threading.Thread):
    """Sends numbered octet-counted messages on one TCP connection until stopped or cut off."""

    def __init__(
        self,
        port: int,
        make: Callable[[int], bytes],
        total: int,
        batch: int = 1,
        pause: float = 0.0,
    ) -> None:
        super().__init__(name="test-sender", daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.make = make
        self.total = total
        self.batch = batch
        self.pause = pause
        self.attempted = 0  # messages handed to sendall (possibly delivered)
        self.done = 0  # messages whose sendall returned
        self.sent_at: list[float] = []  # monotonic time sendall returned, per message
        self.error: OSError | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            with self.sock:
                while self.done < self.total and not self.stopping.is_set():
                    n = min(self.batch, self.total - self.done)
                    frames = b"".join(octet(self.make(self.done + i)) for i in range(n))
                    self.attempted = self.done + n
                    self.sock.sendall(frames)
                    now = time.monotonic()
                    self.sent_at.extend([now] * n)
                    self.done += n
                    if self.pause:
                        time.sleep(self.pause)
        except OSError as exc:
            self.error = exc


def _pre(n: int) -> bytes:
    return b"<13>1 2026-11-28T10:00:00Z gw app - - - seq=%d " % n + b"p" * 80


def _post(n: int) -> bytes:
    return b"<13>1 2026-11-28T10:00:01Z gw app - - - after=%d" % n


def _whole_files(data: Path) -> None:
    """Every day file ends with a line end: no half line anywhere."""
    files = list(day_files(data / "archive"))
    assert files
    for _dev, _day, path in files:
        content = path.read_bytes()
        assert content.endswith(b"\n"), path


def test_kill9_during_tcp_ingest_keeps_a_verified_prefix(
    spawn: Callable[[list[str]], CollectorProcess], ports: Ports, tmp_path: Path
) -> None:
    """After kill -9 and a restart the archive verifies and holds a gap-free prefix of the sent."""
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "--tcp", f"127.0.0.1:{ports.tcp}"]
    args += ["--udp", f"127.0.0.1:{ports.udp}", "--metrics", ""]
    first = spawn(args)
    sender = Sender(ports.tcp, _pre, total=10**9, batch=10, pause=0.005)
    sender.start()
    started = time.monotonic()
    # Run long enough that a good part of the stream is older than a second at the kill.
    wait_for(lambda: time.monotonic() - started >= 2.5 and sender.done > 0, timeout=60)
    wait_entries(data, 1, timeout=30)
    killed_at = time.monotonic()
    stop_process(first, kill=True)
    sender.join(timeout=30)
    assert not sender.is_alive()
    assert sender.error is not None  # the connection was cut, not closed by us
    must_have = {n for n, t in enumerate(sender.sent_at) if t < killed_at - 1.0}
    assert len(must_have) > 100

    second = spawn(args)
    after = Sender(ports.tcp, _post, total=100, batch=10)
    after.start()
    after.join(timeout=60)
    assert after.error is None
    assert after.done == 100
    wait_for(
        lambda: sum(1 for e in written_entries(data) if b"after=" in e.raw) == 100,
        timeout=30,
    )
    stop_process(second)
    assert second.proc.returncode == 0, second.output

    done = verify_cli(data)
    assert done.returncode == 0, done.stdout + done.stderr
    _whole_files(data)
    pre: list[int] = []
    post: list[int] = []
    for line in archived_lines(data):
        entry = parse_line(line)
        assert entry.marker == b""
        m = re.fullmatch(rb".*seq=(\d+) p{80}", entry.raw) or re.fullmatch(
            rb".*after=(\d+)", entry.raw
        )
        assert m is not None, line
        n = int(m.group(1))
        if b"seq=" in entry.raw:
            assert entry.raw == _pre(n)
            pre.append(n)
        else:
            assert entry.raw == _post(n)
            post.append(n)
    assert len(pre) == len(set(pre)), "a message was archived twice"
    assert pre == sorted(pre)
    assert set(pre) == set(range(len(pre))), "a gap before the last archived message"
    assert must_have <= set(pre), "lost messages sent more than 1 s before the kill"
    assert len(pre) <= sender.attempted
    assert post == list(range(100))


def _payload(n: int) -> bytes:
    head = b"<13>1 2026-11-28T10:00:00Z gw app - - - n=%08d " % n
    return head + b"z" * (4000 - len(head))


def test_full_disk_blocks_tcp_sender_without_loss(
    start_collector: Callable[..., Collector], ports: Ports, tmp_path: Path
) -> None:
    """A full archive disk stalls the TCP sender, keeps memory bounded and loses nothing."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    data = tmp_path / "data"
    # 60 MB: far more than the 2 MB disk, the 1 MB buffer and what the kernel can hold in the
    # two socket buffers (tcp_wmem / tcp_rmem autotuning reach a few tens of MB on loopback).
    total = 15_000
    with tmpfs(data / "archive", "2m") as archive:
        c = start_collector(collector={"buffer_max_bytes": 1 << 20})
        try:
            first = _payload(0).replace(b"n=", b"first=")
            with socket.create_connection((ports.host, ports.tcp)) as s:
                s.sendall(octet(first))
            wait_entries(data, 1)  # the day file and its chain exist before the disk fills
            rss_before = rss_kib()
            sender = Sender(ports.tcp, _payload, total=total)
            sender.start()
            wait_for(
                lambda: (
                    metric(ports.metrics, "logmaster_archive_write_errors_total", reason="ENOSPC")
                    > 0
                ),
                timeout=60,
            )
            # The sender is held back: no progress for 2 s while it still has most to send.
            last = [sender.done, time.monotonic()]

            def stalled() -> bool:
                if sender.done != last[0]:
                    last[:] = [sender.done, time.monotonic()]
                    return False
                return time.monotonic() - last[1] >= 2.0

            wait_for(stalled, timeout=60, interval=0.1)
            assert sender.is_alive()
            assert sender.done < total, sender.done
            assert metric(ports.metrics, "logmaster_archive_writable") == 0
            buffered = metric(ports.metrics, "logmaster_archive_buffered_bytes")
            assert buffered <= 4 << 20, buffered
            rss_stalled = rss_kib()
            assert rss_stalled - rss_before < 24 * 1024, (rss_before, rss_stalled)

            remount(archive, "128m")
            sender.join(timeout=120)
            assert not sender.is_alive()
            assert sender.error is None
            assert sender.done == total
            wait_for(
                lambda: metric(ports.metrics, "logmaster_archive_lines_total") == total + 1,
                timeout=120,
            )
            # Measured before this process reads the 60 MB archive back.
            rss_after = rss_kib()
            assert rss_after - rss_before < 24 * 1024, (rss_before, rss_after)
        finally:
            remount(archive, "128m")
            if c.ingest._thread is not None and c.ingest._thread.is_alive():
                c.stop()
        got = entries(data)
        assert [(e.raw, e.marker) for e in got] == [(first, b"")] + [
            (_payload(n), b"") for n in range(total)
        ]
        _whole_files(data)
        done = verify_cli(data)
        assert done.returncode == 0, done.stdout + done.stderr
