"""Helpers shared by the tests: free ports, waiting, reading the archive, a collector process.

A plain module (not conftest.py) so test modules can import it by a name no other folder's
conftest.py shadows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logmaster.archive.verify import day_files

# Ports handed out in this process: the kernel may offer a just-closed port again, and two
# listeners of one test given the same port fail with EADDRINUSE (seen in CI).
_GIVEN: set[int] = set()


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` right now, never the same one twice."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, kind) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port in _GIVEN:
            continue
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(family, other) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free port")


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(interval)


def archived_lines(data_dir: Path, device: str | None = None) -> list[bytes]:
    """Every archive line (without LF) under ``data_dir``, device by device, in file order."""
    lines: list[bytes] = []
    for _dev, _day, path in day_files(data_dir / "archive", device):
        lines.extend(path.read_bytes().splitlines())
    return lines


def archived_messages(data_dir: Path, device: str | None = None) -> list[bytes]:
    """The raw messages (unescaped) of every archive line."""
    from logmaster.archive.line import parse_line

    return [parse_line(line).raw for line in archived_lines(data_dir, device)]


@dataclass
class Ports:
    host: str
    udp: int
    tcp: int
    tls: int
    metrics: int


class CollectorProcess:
    """``logmaster collect`` as a real subprocess (for kill -9 and CLI tests)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logmaster", "collect", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.output = b""
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        wait_for(lambda: self._read() and b"listening on" in self.output, timeout=30)

    def _read(self) -> bool:
        assert self.proc.stdout is not None
        chunk = self.proc.stdout.read()
        if chunk:
            self.output += chunk
        if self.proc.poll() is not None and b"listening on" not in self.output:
            raise AssertionError(f"collector exited: {self.output.decode(errors='replace')}")
        return True

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self._close()

    def _close(self) -> None:
        # An open pipe would surface later as a ResourceWarning (an error in this suite).
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            with contextlib.suppress(OSError):
                self.output += self.proc.stdout.read() or b""
            self.proc.stdout.close()
