"""End-to-end ingest benchmark: syslog over the network into the archive's day files.

For each scenario it starts a real collector in a fresh temporary data directory::

    python -m logmaster collect --data-dir TMP/data --udp 127.0.0.1:P --tcp 127.0.0.1:P \\
        --metrics 127.0.0.1:M [--workers N]

waits for "listening on", runs the load generator as separate processes
(``python -m logmaster loadgen --udp|--tcp 127.0.0.1:P --rate R --seconds S --size B
[--senders K] --json``), waits until ``logmaster_archive_lines_total`` on /metrics stops growing,
stops the collector with SIGTERM and counts the archived lines exactly (every b"\\n" of every day
file under data/archive). Meanwhile it samples the collector's process tree (the collector and,
with --workers > 1, its receiver processes) every 0.2 s from /proc: utime+stime and VmRSS/VmHWM.

Reported per run: sent, archived, loss (count and %), achieved send rate, archived msg/s
(archived / load duration), collector CPU seconds and % of one core over the load + drain window,
peak RSS (max over samples of the sum over the tree), VmHWM of each process, kernel UDP drops
(``logmaster_listener_kernel_drops_total`` summed, or /proc/net/udp if larger), day files.

Without --rate it runs the scenarios the project reports, at their target rates (filtered by
--transport / --senders when given):

- ``udp-1``:    UDP, 200 B, one sender: zero loss at >= 50,000 msg/s (aim ~120,000);
- ``tcp-1``:    TCP, one connection: >= 100,000 msg/s;
- ``udp-1000``: UDP from 1,000 source addresses (1,000 devices and day files): within 20 % of
  ``udp-1``.

--find-max ramps the rate (--ramp) and reports the highest rate archived with zero loss.
--rsyslog runs the same load against rsyslogd (own temporary config: imudp/imtcp into one plain
file with omfile) and prints the LogMaster/rsyslog ratio of archived msg/s. --loggen adds a run
driven by syslog-ng's ``loggen`` when it is installed.

The load generator is Python too: when one process cannot reach the rate, use --loadgen-procs J
(the rate, and the senders, are split between J processes; the achieved rate is what is shown).
The collector and the generator share the machine's cores, so figures are a floor.

Run (as root, for the forced 32 MiB UDP receive buffer)::

    .venv/bin/python bench/ingest.py                          # the reported scenarios, 60 s each
    .venv/bin/python bench/ingest.py --transport udp --rate 50000 --seconds 5
    .venv/bin/python bench/ingest.py --transport tcp --find-max --loadgen-procs 2 --rsyslog
    .venv/bin/python bench/ingest.py --rate 50000 --senders 1000 --seconds 5 --json
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import IO, Any

from rich.console import Console
from rich.table import Table

SAMPLE_S = 0.2
CLK_TCK = os.sysconf("SC_CLK_TCK")
RSYSLOGD = "/usr/sbin/rsyslogd"
DEFAULT_RAMP = "50000,80000,100000,120000,150000,200000"
# A run whose generator reached less than this share of the requested rate says nothing about
# the collector's limit at that rate.
GENERATOR_SHORTFALL = 0.95

out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@dataclass
class Scenario:
    name: str
    transport: str
    rate: int
    senders: int = 1
    target: str = ""
    min_rate: int | None = None  # archived msg/s needed, with zero loss
    relative_to: str | None = None  # within 20 % of this scenario's figure


STANDARD = [
    Scenario(
        "udp-1",
        "udp",
        120_000,
        1,
        "zero loss at >= 50,000 msg/s (aim 120,000)",
        min_rate=50_000,
    ),
    Scenario("tcp-1", "tcp", 100_000, 1, ">= 100,000 msg/s, zero loss", min_rate=100_000),
    Scenario("udp-1000", "udp", 120_000, 1000, "within 20 % of udp-1", relative_to="udp-1"),
]


@dataclass
class RunResult:
    scenario: str
    server: str  # logmaster | rsyslog
    generator: str  # logmaster-loadgen | loggen
    transport: str
    rate: int
    seconds: float
    size: int
    senders: int
    workers: int
    loadgen_procs: int
    sent: int = 0
    send_seconds: float = 0.0
    send_rate: float = 0.0
    archived: int = 0
    loss: int = 0
    loss_pct: float = 0.0
    archived_rate: float = 0.0
    drain_seconds: float = 0.0
    cpu_seconds: float = 0.0
    cpu_window_seconds: float = 0.0
    cpu_pct: float = 0.0
    peak_rss_mb: float = 0.0
    hwm_mb: dict[str, float] = field(default_factory=dict)
    kernel_drops: int = 0
    day_files: int = 0
    warmup_lines: int = 0  # archived before the measured load (--warmup), not counted
    verified: bool | None = None  # `logmaster archive verify` passed (with --verify)
    data_dir: str = ""
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def zero_loss(self) -> bool:
        return self.error is None and self.sent > 0 and self.loss == 0 and self.kernel_drops == 0

    @property
    def cpu_us_per_msg(self) -> float:
        return 1e6 * self.cpu_seconds / self.archived if self.archived > 0 else 0.0

    @property
    def generator_short(self) -> bool:
        return self.send_rate < GENERATOR_SHORTFALL * self.rate


class BenchError(Exception):
    pass


# -- processes we start, and their cleanup ----------------------------------------------------

_children: list[subprocess.Popen[Any]] = []
_tmpdirs: list[tuple[Path, bool]] = []  # (path, keep)


def spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a process in its own session (so its children share its process group id)."""
    proc: subprocess.Popen[Any] = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    _children.append(proc)
    return proc


def _exited(pid: int) -> bool:
    """True once our child ``pid`` has exited; it stays a zombie (pid and group reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _wait_exited(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not _exited(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, wait: float = 10) -> int:
    """Signal one process we started, escalate to SIGKILL of its group; return its exit code.

    Its group (its receiver processes, for the collector) is killed while the leader is still an
    unreaped zombie, so the group id cannot belong to anyone else yet.
    """
    if proc.returncode is None:
        if not _exited(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            if not _wait_exited(proc.pid, wait):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                _wait_exited(proc.pid, 10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with contextlib.suppress(ValueError):
        _children.remove(proc)
    return proc.returncode


def cleanup() -> None:
    while _children:
        stop_process(_children[-1], signal.SIGTERM, wait=5)
    while _tmpdirs:
        path, keep = _tmpdirs.pop()
        if keep:
            err.print(f"kept {path}", highlight=False)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def new_tmpdir(base: Path | None, keep: bool, prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    _tmpdirs.append((path, keep))
    return path


def release_tmpdir(path: Path) -> None:
    for i, (p, keep) in enumerate(_tmpdirs):
        if p == path:
            del _tmpdirs[i]
            if keep:
                err.print(f"  kept {path}", highlight=False)
            else:
                shutil.rmtree(path, ignore_errors=True)
            return


# -- /proc ------------------------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc/<pid>/task/<tid>/children)."""
    seen: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            text = _read(f"/proc/{pid}/task/{tid}/children")
            if text:
                todo.extend(int(c) for c in text.split())
    return seen


def cpu_seconds(pid: int) -> float | None:
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def status_kb(pid: int) -> dict[str, int]:
    text = _read(f"/proc/{pid}/status") or ""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class TreeSampler(threading.Thread):
    """CPU and memory of a process tree, sampled every SAMPLE_S."""

    def __init__(self, root: int) -> None:
        super().__init__(name="sampler", daemon=True)
        self.root = root
        self.lock = threading.Lock()
        self.cpu: dict[int, float] = {}
        self.hwm_kb: dict[int, int] = {}
        self.peak_rss_kb = 0
        self.cmdlines: dict[int, str] = {}
        self.stopping = threading.Event()
        self.sample()

    def sample(self) -> None:
        rss = 0
        for pid in process_tree(self.root):
            cpu = cpu_seconds(pid)
            st = status_kb(pid)
            if pid not in self.cmdlines:
                self.cmdlines[pid] = (_read(f"/proc/{pid}/cmdline") or "").replace("\0", " ")
            with self.lock:
                if cpu is not None:
                    self.cpu[pid] = cpu
                if "VmHWM" in st:
                    self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), st["VmHWM"])
            rss += st.get("VmRSS", 0)
        with self.lock:
            self.peak_rss_kb = max(self.peak_rss_kb, rss)

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_S):
            self.sample()

    def cpu_total(self) -> float:
        self.sample()
        with self.lock:
            return sum(self.cpu.values())

    def stop(self) -> None:
        self.sample()
        self.stopping.set()
        self.join(2)

    def hwm_mb(self) -> dict[str, float]:
        with self.lock:
            return {
                f"{self.label(pid)} {pid}": kb / 1024
                for pid, kb in sorted(self.hwm_kb.items(), key=lambda kv: kv[0] != self.root)
            }

    def label(self, pid: int) -> str:
        if pid == self.root:
            return "main"
        cmdline = self.cmdlines.get(pid, "")
        if "resource_tracker" in cmdline:
            return "resource_tracker"
        if "spawn_main" in cmdline or "forkserver" in cmdline:
            return "receiver"
        return "child"


def proc_net_udp_drops(port: int) -> int:
    """Sum of the ``drops`` column of every UDP socket bound to ``port`` (all SO_REUSEPORT)."""
    total = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        text = _read(table) or ""
        for row in text.splitlines()[1:]:
            cols = row.split()
            if len(cols) > 12 and int(cols[1].rsplit(":", 1)[1], 16) == port:
                total += int(cols[12])
    return total


def listening(transport: str, port: int) -> bool:
    """True once some socket is bound to ``port`` (UDP) or listens on it (TCP)."""
    table = "/proc/net/udp" if transport == "udp" else "/proc/net/tcp"
    for row in (_read(table) or "").splitlines()[1:]:
        cols = row.split()
        bound = len(cols) > 3 and int(cols[1].rsplit(":", 1)[1], 16) == port
        if bound and (transport == "udp" or cols[3] == "0A"):
            return True
    return False


def free_port() -> int:
    """A loopback port free for both UDP and TCP."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise BenchError("no free port")


# -- counting ---------------------------------------------------------------------------------


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def archive_lines(archive: Path) -> tuple[int, int]:
    """(lines, day files) under the archive root: every b"\\n" of every day file."""
    from logmaster.archive.verify import day_files

    lines = files = 0
    for _dev, _day, path in day_files(archive):
        lines += count_lines(path)
        files += 1
    return lines, files


class GrowingFile:
    """Counts the lines of a file that is being appended to, reading only what is new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def count(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                while chunk := fh.read(1 << 20):
                    self.lines += chunk.count(b"\n")
                    self.offset += len(chunk)
        except FileNotFoundError:
            pass
        return self.lines


def scrape(url: str) -> dict[str, float] | None:
    """Metric name -> value summed over its label sets, or None if /metrics did not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            values[name] = values.get(name, 0.0) + float(value)
    return values


@dataclass
class Progress:
    """What a server has archived so far, and whether anything is still on its way."""

    lines: int
    signature: tuple[float, ...]  # changes while the server makes progress
    busy: bool = False  # lines held in memory, not yet written


def wait_drained(
    read: Callable[[], Progress | None], expected: int, settle: float, timeout: float
) -> tuple[int | None, float]:
    """Poll ``read`` until ``expected`` lines are archived, or nothing moved for ``settle`` s.

    Nothing moved: the same signature and nothing buffered, for ``settle`` seconds.
    """
    start = time.monotonic()
    last: tuple[float, ...] | None = None
    changed = start
    while True:
        progress = read()
        now = time.monotonic()
        value = progress.lines if progress else None
        if value is not None and value >= expected:
            return value, now - start
        signature = progress.signature if progress else None
        if signature != last or (progress is not None and progress.busy):
            last, changed = signature, now
        if now - changed >= settle or now - start >= timeout:
            return value, now - start
        time.sleep(SAMPLE_S)


# -- load generation --------------------------------------------------------------------------


@dataclass
class LoadOutcome:
    sent: int
    seconds: float
    notes: list[str]


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def parse_loadgen_json(text: str) -> dict[str, Any]:
    start = text.find("{")
    if start < 0:
        raise BenchError(f"loadgen printed no JSON: {text[-300:]!r}")
    result, _ = json.JSONDecoder().raw_decode(text[start:].replace("\n", " "))
    if not isinstance(result, dict):
        raise BenchError(f"loadgen JSON is not an object: {text[-300:]!r}")
    return result


def run_loadgen(
    args: argparse.Namespace,
    transport: str,
    port: int,
    rate: int,
    senders: int,
    seconds: float | None = None,
) -> LoadOutcome:
    seconds = args.seconds if seconds is None else seconds
    procs = args.loadgen_procs
    rates = split(rate, procs)
    sender_parts = split(senders, procs) if senders > 1 else [1] * procs
    env = {**os.environ, "COLUMNS": "400"}
    running: list[tuple[subprocess.Popen[str], IO[str]]] = []
    offset = 0
    for r, k in zip(rates, sender_parts, strict=True):
        common = [
            f"--{transport}",
            f"127.0.0.1:{port}",
            "--rate",
            str(r),
            "--seconds",
            str(seconds),
            "--size",
            str(args.size),
            "--senders",
            str(k),
            "--json",
        ]
        if senders > 1 and procs > 1:
            # J processes together use K distinct devices.
            common += ["--first-sender", str(offset)]
        cmd = [args.python, "-m", "logmaster", "loadgen", *common]
        offset += k
        errfile: IO[str] = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below
        running.append(
            (spawn(cmd, stdout=subprocess.PIPE, stderr=errfile, text=True, env=env), errfile)
        )
    sent = 0
    longest = 0.0
    notes: list[str] = []
    failures: list[str] = []
    for lg, lg_err in running:
        try:
            stdout, _ = lg.communicate(timeout=seconds * 3 + 60)
        except subprocess.TimeoutExpired:
            stdout = ""
            failures.append("loadgen did not finish in time")
        stop_process(lg)  # reaped already unless it timed out
        lg_err.seek(0)
        stderr = lg_err.read()
        lg_err.close()
        if lg.returncode != 0:
            failures.append(f"loadgen exit {lg.returncode}: {(stderr or stdout).strip()[-300:]}")
            continue
        result = parse_loadgen_json(stdout)
        sent += int(result["sent"])
        longest = max(longest, float(result["seconds"]))
    if failures:
        raise BenchError("; ".join(failures))
    return LoadOutcome(sent, longest, notes)


LOGGEN_COUNT = re.compile(r"count=(\d+)")


def run_loggen(
    args: argparse.Namespace, transport: str, port: int, rate: int, senders: int
) -> LoadOutcome:
    """One syslog-ng ``loggen`` process (not validated here: loggen was not installed)."""
    loggen = shutil.which("loggen")
    assert loggen is not None
    cmd = [
        loggen,
        "--inet",
        "--dgram" if transport == "udp" else "--stream",
        "--rate",
        str(rate),
        "--interval",
        str(max(1, round(args.seconds))),
        "--size",
        str(args.size),
        "--active-connections",
        str(senders),
        "127.0.0.1",
        str(port),
    ]
    start = time.monotonic()
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        text, _ = proc.communicate(timeout=args.seconds * 3 + 60)
    except subprocess.TimeoutExpired:
        text = ""
    stop_process(proc)
    seconds = time.monotonic() - start
    counts = LOGGEN_COUNT.findall(text or "")
    if proc.returncode != 0 or not counts:
        raise BenchError(f"loggen exit {proc.returncode}: {(text or '').strip()[-300:]}")
    return LoadOutcome(sum(int(c) for c in counts), seconds, [f"loggen: {counts[-1]} counted"])


# -- servers ----------------------------------------------------------------------------------


def collector_env(sets: list[str]) -> dict[str, str]:
    """The environment without the caller's LOGMASTER_* settings, plus --set KEY=VALUE ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGMASTER_")}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise BenchError(f"--set {item!r}: use KEY=VALUE (e.g. archive__fsync=never)")
        env[f"LOGMASTER_{key.upper()}"] = value
    return env


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class LogMasterServer:
    name = "logmaster"

    def __init__(self, args: argparse.Namespace, workdir: Path, transport: str) -> None:
        self.args = args
        self.transport = transport
        self.data = workdir / "data"
        self.log = workdir / "collector.log"
        self.port = free_port()
        self.metrics_port = free_port()
        self.url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_lines: list[str] = []

    def start(self) -> int:
        a = self.args
        cmd = [
            a.python,
            "-m",
            "logmaster",
            "collect",
            "--data-dir",
            str(self.data),
            "--udp",
            f"127.0.0.1:{self.port}",
            "--tcp",
            f"127.0.0.1:{self.port}",
            "--metrics",
            f"127.0.0.1:{self.metrics_port}",
        ]
        if a.workers is not None:
            cmd += ["--workers", str(a.workers)]
        env = {**collector_env(a.set), "COLUMNS": "400"}
        with open(self.log, "w") as logfile:
            self.proc = spawn(
                cmd, stdout=subprocess.PIPE, stderr=logfile, text=True, env=env, bufsize=1
            )
        ready = threading.Event()
        stdout = self.proc.stdout
        assert stdout is not None

        def reader() -> None:
            for line in stdout:
                self.stdout_lines.append(line.rstrip("\n"))
                if "listening on" in line:
                    ready.set()

        threading.Thread(target=reader, name="collector stdout", daemon=True).start()
        deadline = time.monotonic() + 60
        while not ready.wait(0.1):
            if _exited(self.proc.pid) or time.monotonic() > deadline:
                code = stop_process(self.proc)
                raise BenchError(
                    f"collector did not start (exit {code}): "
                    f"{' | '.join(self.stdout_lines)} {tail(self.log)}"
                )
        return self.proc.pid

    def count(self) -> Progress | None:
        values = scrape(self.url)
        if values is None:
            return None
        lines = int(values.get("logmaster_archive_lines_total", 0))
        received = values.get("logmaster_listener_received_total", 0.0)
        buffered = values.get("logmaster_archive_buffered_bytes", 0.0)
        return Progress(lines, (lines, received, buffered), busy=buffered > 0)

    def kernel_drops(self) -> int:
        values = scrape(self.url) or {}
        metric = int(values.get("logmaster_listener_kernel_drops_total", 0))
        return max(metric, proc_net_udp_drops(self.port)) if self.transport == "udp" else metric

    def stop(self) -> list[str]:
        assert self.proc is not None
        code = stop_process(self.proc, signal.SIGTERM, wait=120)
        notes = []
        if code != 0:
            notes.append(f"collector exited {code} on SIGTERM: {tail(self.log, 5)}")
        bad = [
            ln
            for ln in (
                self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
            )
            if "level=error" in ln or "level=critical" in ln or "Traceback" in ln
        ]
        if bad:
            notes.append(f"{len(bad)} error lines in the collector log, first: {bad[0][:300]}")
        return notes

    def archived(self) -> tuple[int, int]:
        return archive_lines(self.data / "archive")

    def verify(self) -> tuple[bool, str]:
        """``logmaster archive verify`` over the stopped collector's data directory."""
        done = subprocess.run(
            [
                self.args.python,
                "-m",
                "logmaster",
                "archive",
                "verify",
                "--data-dir",
                str(self.data),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**collector_env([]), "COLUMNS": "400"},
        )
        lines = (done.stdout + done.stderr).strip().splitlines()
        failed = [ln for ln in lines if ln.startswith("FAIL")]
        return done.returncode == 0, (failed[0] if failed else (lines[-1] if lines else ""))[:300]


RSYSLOG_CONF = """\
# Written by bench/ingest.py: one input, every message into one plain file, nothing else.
global(workDirectory="{work}" maxMessageSize="64k" net.enableDNS="off")
{input_module}
template(name="bench" type="string"
         string="%timegenerated:::date-rfc3339% %fromhost-ip% %rawmsg%\\n")
ruleset(name="bench") {{
  action(type="omfile" file="{out}" template="bench" ioBufferSize="256k" flushOnTXEnd="on")
}}
"""


class RsyslogServer:
    name = "rsyslog"

    def __init__(self, args: argparse.Namespace, workdir: Path, transport: str) -> None:
        self.args = args
        self.transport = transport
        self.workdir = workdir
        self.port = free_port()
        self.out = workdir / "messages.log"
        self.log = workdir / "rsyslogd.log"
        self.proc: subprocess.Popen[str] | None = None
        self.counter = GrowingFile(self.out)

    def start(self) -> int:
        work = self.workdir / "work"
        work.mkdir()
        threads = self.args.rsyslog_threads
        if self.transport == "udp":
            module = (
                f'module(load="imudp" threads="{threads}")\n'
                f'input(type="imudp" address="127.0.0.1" port="{self.port}" '
                f'rcvbufSize="32m" ruleset="bench")'
            )
        else:
            module = (
                'module(load="imtcp" maxSessions="20000")\n'
                f'input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="bench")'
            )
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(RSYSLOG_CONF.format(work=work, input_module=module, out=self.out))
        cmd = [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.workdir / "rsyslogd.pid")]
        with open(self.log, "w") as logfile:
            self.proc = spawn(cmd, stdout=logfile, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while not listening(self.transport, self.port):
            if _exited(self.proc.pid) or time.monotonic() > deadline:
                code = stop_process(self.proc)
                raise BenchError(f"rsyslogd did not start (exit {code}): {tail(self.log)}")
            time.sleep(0.05)
        return self.proc.pid

    def count(self) -> Progress | None:
        lines = self.counter.count()
        return Progress(lines, (lines,))

    def kernel_drops(self) -> int:
        return proc_net_udp_drops(self.port) if self.transport == "udp" else 0

    def stop(self) -> list[str]:
        assert self.proc is not None
        code = stop_process(self.proc, signal.SIGTERM, wait=60)
        return [] if code == 0 else [f"rsyslogd exited {code}: {tail(self.log, 5)}"]

    def archived(self) -> tuple[int, int]:
        return (count_lines(self.out) if self.out.exists() else 0), 1


# -- one run ----------------------------------------------------------------------------------


def warm_up(args: argparse.Namespace, server: LogMasterServer | RsyslogServer, sc: Scenario) -> int:
    """Send a little from every sender first, so its device exists; return the lines archived."""
    rate = max(1000, 2 * sc.senders)
    load = run_loadgen(args, sc.transport, server.port, rate, sc.senders, seconds=1.0)
    lines, _ = wait_drained(server.count, load.sent, args.settle, timeout=300)
    if lines is None or lines < load.sent:
        raise BenchError(f"warm-up: {lines} of {load.sent} lines archived")
    return lines


def run_one(
    args: argparse.Namespace,
    scenario: Scenario,
    rate: int,
    server_kind: str,
    generator: str = "logmaster-loadgen",
) -> RunResult:
    result = RunResult(
        scenario=scenario.name,
        server=server_kind,
        generator=generator,
        transport=scenario.transport,
        rate=rate,
        seconds=args.seconds,
        size=args.size,
        senders=scenario.senders,
        workers=args.workers or 1,
        loadgen_procs=args.loadgen_procs if generator == "logmaster-loadgen" else 1,
    )
    workdir = new_tmpdir(args.tmp_dir, args.keep, f"logmaster-bench-{server_kind}-")
    result.data_dir = str(workdir)
    server: LogMasterServer | RsyslogServer
    if server_kind == "logmaster":
        server = LogMasterServer(args, workdir, scenario.transport)
    else:
        server = RsyslogServer(args, workdir, scenario.transport)
    err.print(
        f"[bold]{scenario.name}[/] {server_kind}: {scenario.transport} {rate:,} msg/s x "
        f"{args.seconds:g} s, {args.size} B, {scenario.senders} sender(s), "
        f"{result.workers} worker(s), generator {generator}"
        f"{f' x{args.loadgen_procs}' if generator == 'logmaster-loadgen' else ''}"
        f"{', after a warm-up' if args.warmup else ''} ...",
        highlight=False,
    )
    sampler: TreeSampler | None = None
    try:
        pid = server.start()
        if args.warmup:
            result.warmup_lines = warm_up(args, server, scenario)
        sampler = TreeSampler(pid)
        sampler.start()
        cpu0 = sampler.cpu_total()
        t0 = time.monotonic()
        if generator == "loggen":
            load = run_loggen(args, scenario.transport, server.port, rate, scenario.senders)
        else:
            load = run_loadgen(args, scenario.transport, server.port, rate, scenario.senders)
        result.sent = load.sent
        result.send_seconds = load.seconds
        result.send_rate = load.sent / load.seconds if load.seconds else 0.0
        result.notes += load.notes
        seen, result.drain_seconds = wait_drained(
            server.count, load.sent, args.settle, timeout=max(120.0, args.seconds * 2)
        )
        result.cpu_seconds = sampler.cpu_total() - cpu0
        result.cpu_window_seconds = time.monotonic() - t0
        result.cpu_pct = 100 * result.cpu_seconds / result.cpu_window_seconds
        result.kernel_drops = server.kernel_drops()
        if seen is None:
            result.notes.append("the line count could not be read while draining")
        sampler.stop()
        result.peak_rss_mb = sampler.peak_rss_kb / 1024
        result.hwm_mb = sampler.hwm_mb()
        result.notes += server.stop()
        result.archived, result.day_files = server.archived()
        result.archived -= result.warmup_lines
        if args.verify and isinstance(server, LogMasterServer):
            result.verified, message = server.verify()
            if not result.verified:
                result.notes.append(f"archive verify failed: {message}")
        result.loss = result.sent - result.archived
        result.loss_pct = 100 * result.loss / result.sent if result.sent else 0.0
        result.archived_rate = result.archived / result.send_seconds if result.send_seconds else 0
        if result.generator_short:
            result.notes.append(
                f"generator reached {result.send_rate:,.0f} of {rate:,} msg/s (try --loadgen-procs)"
            )
        if result.loss < 0:
            result.notes.append(f"{-result.loss} more lines archived than sent (duplicates?)")
    except BenchError as exc:
        result.error = str(exc)
        err.print(f"  [red]failed:[/] {exc}", highlight=False)
    finally:
        if sampler is not None:
            sampler.stopping.set()
        if server.proc is not None:
            stop_process(server.proc)
        release_tmpdir(workdir)
    if result.error is None:
        err.print(
            f"  sent {result.sent:,} ({result.send_rate:,.0f}/s), archived {result.archived:,}, "
            f"loss {result.loss:,}, CPU {result.cpu_pct:.0f} %, "
            f"peak RSS {result.peak_rss_mb:.0f} MB",
            highlight=False,
        )
    return result


# -- scenarios, ramps, comparisons ------------------------------------------------------------


@dataclass
class ScenarioOutcome:
    scenario: Scenario
    runs: list[RunResult]  # every run, ramp steps included
    best: dict[str, RunResult | None]  # server/generator -> the run its figure comes from
    figure: dict[str, float]  # server/generator -> archived msg/s (or max zero-loss rate)
    verdict: str = ""


def find_max(
    args: argparse.Namespace, scenario: Scenario, server: str, generator: str
) -> tuple[list[RunResult], RunResult | None, float]:
    runs: list[RunResult] = []
    best: RunResult | None = None
    for rate in args.ramp:
        run = run_one(args, scenario, rate, server, generator)
        runs.append(run)
        if not run.zero_loss:
            break
        best = run
        if run.generator_short:
            run.notes.append("ramp stopped: the generator cannot go faster (--loadgen-procs)")
            break
    figure = best.archived_rate if best else 0.0
    return runs, best, figure


def run_scenario(args: argparse.Namespace, scenario: Scenario) -> ScenarioOutcome:
    outcome = ScenarioOutcome(scenario, [], {}, {})
    servers: list[tuple[str, str]] = [("logmaster", "logmaster-loadgen")]
    if args.rsyslog:
        servers.append(("rsyslog", "logmaster-loadgen"))
    if args.loggen_available:
        servers.append(("logmaster", "loggen"))
    for server, generator in servers:
        key = server if generator == "logmaster-loadgen" else f"{server} ({generator})"
        if args.find_max:
            runs, best, figure = find_max(args, scenario, server, generator)
        else:
            run = run_one(args, scenario, scenario.rate, server, generator)
            runs, best, figure = [run], run, run.archived_rate
        outcome.runs += runs
        outcome.best[key] = best
        outcome.figure[key] = figure
    return outcome


def judge(outcomes: list[ScenarioOutcome], find_max_mode: bool) -> None:
    by_name = {o.scenario.name: o for o in outcomes}
    for o in outcomes:
        sc = o.scenario
        best = o.best.get("logmaster")
        fig = o.figure.get("logmaster", 0.0)
        if best is None or best.error:
            o.verdict = "no zero-loss run" if find_max_mode and best is None else "error"
            continue
        if sc.min_rate is not None and best.rate < sc.min_rate and best.zero_loss:
            o.verdict = f"not tested: asked {best.rate:,} < {sc.min_rate:,} msg/s"
        elif sc.min_rate is not None and best.zero_loss and best.generator_short:
            o.verdict = (
                f"inconclusive: no loss, but the generator reached only {best.send_rate:,.0f} msg/s"
            )
        elif sc.min_rate is not None:
            ok = best.zero_loss and fig >= sc.min_rate
            o.verdict = f"{'met' if ok else 'NOT met'}: {fig:,.0f} msg/s" + (
                "" if best.zero_loss else f", loss {best.loss:,}"
            )
            if best.generator_short and not ok:
                o.verdict += " (generator-limited)"
        elif sc.relative_to is not None:
            ref = by_name.get(sc.relative_to)
            ref_fig = ref.figure.get("logmaster", 0.0) if ref else 0.0
            if not ref_fig:
                o.verdict = f"{fig:,.0f} msg/s ({sc.relative_to} not run)"
            else:
                share = fig / ref_fig
                ok = share >= 0.8 and best.zero_loss
                o.verdict = (
                    f"{'met' if ok else 'NOT met'}: {fig:,.0f} msg/s = {100 * share:.0f} % of "
                    f"{sc.relative_to}" + ("" if best.zero_loss else f", loss {best.loss:,}")
                )


# -- output -----------------------------------------------------------------------------------


def fmt_hwm(hwm: dict[str, float]) -> str:
    return " / ".join(f"{v:.0f}" for v in hwm.values())


def print_tables(outcomes: list[ScenarioOutcome], args: argparse.Namespace) -> None:
    table = Table(
        "scenario",
        "server",
        "rate asked",
        "sent",
        "send/s",
        "archived",
        "loss",
        "archived/s",
        "CPU s",
        "CPU %",
        "CPU us/msg",
        "peak RSS MB",
        "VmHWM MB",
        "kernel drops",
        "day files",
        title=f"{args.seconds:g} s loads, {args.size} B messages, "
        f"{args.workers or 1} collector worker(s), {args.loadgen_procs} loadgen process(es)"
        + (", devices created by a warm-up first" if args.warmup else ""),
    )
    notes: list[str] = []
    for o in outcomes:
        for r in o.runs:
            server = r.server if r.generator == "logmaster-loadgen" else f"{r.server}+{r.generator}"
            if r.error:
                table.add_row(o.scenario.name, server, f"{r.rate:,}", "error", *[""] * 11)
                notes.append(f"{o.scenario.name}/{server}@{r.rate:,}: {r.error}")
                continue
            loss = f"{r.loss:,} ({r.loss_pct:.2f} %)"
            table.add_row(
                o.scenario.name,
                server,
                f"{r.rate:,}",
                f"{r.sent:,}",
                f"{r.send_rate:,.0f}",
                f"{r.archived:,}",
                loss if r.loss else "0",
                f"{r.archived_rate:,.0f}",
                f"{r.cpu_seconds:.1f}",
                f"{r.cpu_pct:.0f}",
                f"{r.cpu_us_per_msg:.1f}",
                f"{r.peak_rss_mb:.0f}",
                fmt_hwm(r.hwm_mb),
                f"{r.kernel_drops:,}",
                f"{r.day_files:,}"
                + {None: "", True: " verified", False: " VERIFY FAILED"}[r.verified],
            )
            notes += [f"{o.scenario.name}/{server}@{r.rate:,}: {n}" for n in r.notes]
    out.print(table)
    out.print(
        "archived/s = archived lines / load duration; CPU over load + drain; peak RSS summed "
        "over the process tree; VmHWM per process (main / its children, see --json).",
        highlight=False,
    )
    summary = Table(
        "scenario", "target", "figure", "verdict", "LogMaster / rsyslog msg/s", "CPU/msg ratio"
    )
    for o in outcomes:
        lm = o.figure.get("logmaster", 0.0)
        rs = o.figure.get("rsyslog")
        ratio = f"{lm / rs:.2f}" if rs else ("-" if rs is None else "rsyslog: 0")
        extra = "".join(f"; {k}: {v:,.0f}" for k, v in o.figure.items() if k not in ("logmaster",))
        label = "max zero-loss msg/s" if args.find_max else "archived msg/s"
        lm_run, rs_run = o.best.get("logmaster"), o.best.get("rsyslog")
        cpu_ratio = "-"
        if lm_run and rs_run and rs_run.cpu_us_per_msg:
            cpu_ratio = f"{lm_run.cpu_us_per_msg / rs_run.cpu_us_per_msg:.1f}x"
        summary.add_row(
            o.scenario.name,
            o.scenario.target or "-",
            f"{label}: {lm:,.0f}{extra}",
            o.verdict or "-",
            ratio,
            cpu_ratio,
        )
    out.print(summary)
    for n in notes:
        out.print(f"note: {n}", highlight=False)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure LogMaster ingest end to end: load generator -> collector -> day "
        "files; loss, rate, CPU, memory (optionally against rsyslogd).",
        epilog="Without --rate: the reported scenarios udp-1 (120k msg/s), tcp-1 (100k) and "
        "udp-1000 (120k, 1,000 senders), filtered by --transport and --senders if given.",
    )
    p.add_argument("--transport", choices=["udp", "tcp"], help="only this transport")
    p.add_argument("--rate", type=int, help="messages per second (a single custom scenario)")
    p.add_argument("--seconds", type=float, default=60.0, help="load duration (default 60)")
    p.add_argument("--size", type=int, default=200, help="bytes per message (default 200)")
    p.add_argument("--senders", type=int, help="distinct source addresses (default 1)")
    p.add_argument("--workers", type=int, help="collector --workers N (receiver processes)")
    p.add_argument(
        "--loadgen-procs",
        type=int,
        default=1,
        metavar="J",
        help="parallel loadgen processes sharing the rate (and the senders); default 1",
    )
    p.add_argument(
        "--find-max",
        action="store_true",
        help="ramp the rate (--ramp) and report the highest rate with zero loss",
    )
    p.add_argument(
        "--ramp",
        default=DEFAULT_RAMP,
        help=f"rates for --find-max, comma-separated (default {DEFAULT_RAMP})",
    )
    p.add_argument("--rsyslog", action="store_true", help=f"also run each load against {RSYSLOGD}")
    p.add_argument(
        "--rsyslog-threads", type=int, default=1, help="imudp threads for --rsyslog (default 1)"
    )
    p.add_argument(
        "--loggen", action="store_true", help="also drive the collector with syslog-ng's loggen"
    )
    p.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds without a new archived line that end the drain wait (default 3)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="collector setting as LOGMASTER_KEY=VALUE (e.g. archive__fsync=never); repeatable",
    )
    p.add_argument(
        "--warmup",
        action="store_true",
        help="before measuring, send 1 s at a low rate from every sender (devices get created) "
        "and leave those lines out of the figures",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="run `logmaster archive verify` on each stopped collector's archive",
    )
    p.add_argument("--tmp-dir", type=Path, help="where the fresh data directories are made")
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    p.add_argument("--python", default=sys.executable, help="interpreter running logmaster")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.size < 16 or args.loadgen_procs < 1:
        p.error("--seconds > 0, --size >= 16 and --loadgen-procs >= 1 please")
    if args.rate is not None and args.rate < 1:
        p.error("--rate must be positive")
    if args.senders is not None and 1 < args.senders < args.loadgen_procs:
        p.error("--senders must be 1 or at least --loadgen-procs (each process needs one)")
    try:
        args.ramp = [int(r) for r in args.ramp.split(",") if r.strip()]
    except ValueError:
        p.error("--ramp: comma-separated integers")
    if args.rsyslog and not os.access(RSYSLOGD, os.X_OK):
        err.print(f"{RSYSLOGD} not found: --rsyslog skipped", highlight=False)
        args.rsyslog = False
    args.loggen_available = False
    if args.loggen:
        if shutil.which("loggen") is None:
            err.print("syslog-ng's loggen is not installed: --loggen skipped", highlight=False)
        else:
            args.loggen_available = True
    return args


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    """The reported scenarios matching --transport/--senders, or one at --rate.

    A custom scenario with the shape of a reported one keeps its name and target.
    """
    chosen = [
        s
        for s in STANDARD
        if (args.transport is None or s.transport == args.transport)
        and (args.senders is None or s.senders == args.senders)
    ]
    if args.rate is None and chosen:
        return chosen
    if args.rate is None and not args.find_max:
        raise BenchError("no reported scenario matches --transport/--senders; give --rate")
    transport = args.transport or "udp"
    senders = args.senders or 1
    rate = args.rate if args.rate is not None else args.ramp[0]
    for s in STANDARD:
        if (s.transport, s.senders) == (transport, senders):
            return [replace(s, rate=rate)]
    return [Scenario(f"{transport}-{senders}", transport, rate, senders)]


@contextlib.contextmanager
def cleaned_up() -> Iterator[None]:
    atexit.register(cleanup)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C must reach us even when started with SIGINT ignored (a background job of a script).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        cleanup()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with cleaned_up():
            todo = scenarios(args)
            outcomes = [run_scenario(args, sc) for sc in todo]
    except KeyboardInterrupt:
        err.print("interrupted: every process started was stopped", highlight=False)
        return 130
    except BenchError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        return 2
    judge(outcomes, args.find_max)
    if args.json:
        print(
            json.dumps(
                {
                    "seconds": args.seconds,
                    "size": args.size,
                    "workers": args.workers or 1,
                    "loadgen_procs": args.loadgen_procs,
                    "find_max": args.find_max,
                    "cpus": os.cpu_count(),
                    "scenarios": [
                        {
                            **asdict(o.scenario),
                            "figure": o.figure,
                            "verdict": o.verdict,
                            "runs": [
                                {
                                    **asdict(r),
                                    "zero_loss": r.zero_loss,
                                    "cpu_us_per_msg": r.cpu_us_per_msg,
                                }
                                for r in o.runs
                            ],
                        }
                        for o in outcomes
                    ],
                },
                indent=2,
            )
        )
    else:
        print_tables(outcomes, args)
    return 1 if any(r.error for o in outcomes for r in o.runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
