"""Helpers of the collector tests: metrics, archive reading, rsyslog, tmpfs, the verify CLI.

Plain functions and context managers rather than fixtures: a second ``conftest.py`` in this
folder would shadow ``tests/conftest.py`` as the module ``conftest`` that test files import from.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from logmaster.archive.line import ArchiveLine, parse_line
from logmaster.archive.verify import day_files
from support import CollectorProcess, archived_lines, free_port, wait_for

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the collector's /metrics as {(name, labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m is not None, f"unparsable metrics line {line!r}"
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def metric(port: int, name: str, **labels: str) -> float:
    """One sample's value; 0 when the collector has not exported it (yet)."""
    return scrape(port).get((name, frozenset(labels.items())), 0.0)


def entries(data_dir: Path, device: str | None = None) -> list[ArchiveLine]:
    """Every archive line, parsed (raw message unescaped, marker apart)."""
    return [parse_line(line) for line in archived_lines(data_dir, device)]


def written_entries(data_dir: Path) -> list[ArchiveLine]:
    """The lines written so far, for polling while the collector writes.

    A read can catch a write half done; the bytes after the last LF of a file are skipped
    here. Final checks use :func:`entries`, which would show a half line.
    """
    out: list[ArchiveLine] = []
    for _dev, _day, path in day_files(data_dir / "archive"):
        content = path.read_bytes()
        whole = content[: content.rfind(b"\n") + 1]
        out.extend(parse_line(line) for line in whole.split(b"\n")[:-1])
    return out


def wait_entries(data_dir: Path, count: int, timeout: float = 20.0) -> list[ArchiveLine]:
    """Wait until the archive holds at least ``count`` whole lines; return those."""
    return wait_for(
        lambda: (got := written_entries(data_dir)) and len(got) >= count and got, timeout=timeout
    )


def octet(msg: bytes) -> bytes:
    """An RFC 6587 octet-counted frame."""
    return b"%d %s" % (len(msg), msg)


def send_tcp(host: str, port: int, *chunks: bytes, pause: float = 0.0) -> None:
    """Connect, send the chunks (optionally pausing between them), close."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.connect((host, port))
        for chunk in chunks:
            s.sendall(chunk)
            if pause:
                time.sleep(pause)


def send_udp(host: str, port: int, *datagrams: bytes) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, (host, port))


def verify_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``logmaster archive verify`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "logmaster", "archive", "verify", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "500"},
        check=False,
    )


def stop_process(collector: CollectorProcess, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL) a spawned collector if it runs, then close its output pipe.

    ``CollectorProcess`` leaves the pipe open, which ends as an unraisable ResourceWarning
    (an error under filterwarnings=error) in whichever test runs the garbage collector next.
    """
    if collector.proc.poll() is None:
        if kill:
            collector.kill9()
        else:
            collector.stop()
    stdout = collector.proc.stdout
    if stdout is not None and not stdout.closed:
        with contextlib.suppress(OSError, ValueError, TypeError):
            rest = stdout.read()
            if rest:
                collector.output += rest
        stdout.close()


def rss_kib() -> int:
    """Resident set size of this process (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` for the duration (root only)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        done = subprocess.run(["umount", str(path)], check=False, capture_output=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)


def remount(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


class Rsyslog:
    """A private rsyslogd: imtcp on its own port, every message forwarded with ``action``.

    No imuxsock / imklog: it never touches /dev/log or the kernel log. Its own pid file, work
    directory and log; messages of its own go nowhere (the forwarding ruleset is bound to the
    input only).
    """

    def __init__(self, workdir: Path, action: str) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "rsyslog.conf"
        self.pidfile = self.dir / "rsyslogd.pid"
        self.log = self.dir / "rsyslogd.log"
        self.conf.write_text(
            f'global(workDirectory="{self.dir / "work"}")\n'
            'module(load="imtcp")\n'
            'template(name="raw" type="string" string="%rawmsg%")\n'
            'ruleset(name="forward") {\n'
            f"  {action}\n"
            "}\n"
            f'input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="forward")\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def check_config(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/usr/sbin/rsyslogd", "-N1", "-f", str(self.conf)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["/usr/sbin/rsyslogd", "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._accepting, timeout=30)

    def _accepting(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"rsyslogd exited: {self.log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> Rsyslog:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
