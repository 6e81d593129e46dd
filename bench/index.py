"""Indexer throughput: mixed vendor lines from the archive into the index, events per second.

Two measurements:

- ``catch-up`` (default): writes N archive lines (the vendor samples of tests/parsers/samples,
  with their addresses and ports varied) for D devices through the real archive writer, then
  times ``Indexer.catch_up()`` into a fresh index (SQLite; PostgreSQL too with --postgres URL).
- ``--live R``: starts ``logmaster collect`` and ``logmaster index`` as processes, sends R msg/s
  of the same mixed lines for S seconds with ``logmaster loadgen --senders D``, samples the
  indexer's lag every second from its /metrics, and reports the sustained indexing rate and the
  largest lag. This is the issue's "while the collector ingests at the same rate" figure.

Run: ``.venv/bin/python bench/index.py --lines 200000`` or
``.venv/bin/python bench/index.py --live 20000 --seconds 60``. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

from logmaster.archive.line import Clock, format_line
from logmaster.archive.writer import ArchiveWriter
from logmaster.config import Settings
from logmaster.index.workers import IndexerGroup

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "parsers" / "samples"
IPV4 = re.compile(rb"\b(10|172|192|203|198|93|8|1)\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")


def sample_lines() -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted(SAMPLES.glob("*.txt")):
        lines.extend(ln for ln in path.read_bytes().splitlines() if ln.strip())
    if not lines:
        raise SystemExit(f"no samples under {SAMPLES}")
    return lines


MAC = re.compile(rb"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b")
USER = re.compile(rb"(?<=[\s=:])(ayse|mehmet|1mfih2id|1sm6k76j|user\d*|admin|bob|alice)\b")


def varied(lines: list[bytes], n: int, seed: int = 7) -> list[bytes]:
    """``n`` lines cycling through the samples, made to look like a site's population.

    The third and fourth IPv4 octets, MACs and user names are drawn from pools (65,000
    addresses, 5,000 MACs and users), so sessions have realistic keys instead of the samples'
    handful of repeating ones.
    """
    rnd = random.Random(seed)
    out = []

    def addr(m: re.Match[bytes]) -> bytes:
        return b"%s.%s.%d.%d" % (m.group(1), m.group(2), rnd.randrange(256), rnd.randrange(1, 255))

    def hw(_: re.Match[bytes]) -> bytes:
        n = rnd.randrange(5000)
        return b"02:00:00:00:%02x:%02x" % (n >> 8, n & 0xFF)

    def who(_: re.Match[bytes]) -> bytes:
        return b"u%04d" % rnd.randrange(5000)

    for i in range(n):
        line = lines[i % len(lines)]
        out.append(USER.sub(who, MAC.sub(hw, IPV4.sub(addr, line))))
    return out


def write_archive(root: Path, lines: list[bytes], devices: int) -> None:
    writer = ArchiveWriter(root, "never")
    clock = Clock(ZoneInfo("Europe/Istanbul"))
    now = time.time_ns()
    for i, raw in enumerate(lines):
        ns = now - (len(lines) - i) * 1000
        sec, frac = divmod(ns, 1_000_000_000)
        stamp = clock.stamp(sec)
        df = writer.day_file(f"dev{i % devices:04d}", stamp.day)
        writer.add(df, format_line(stamp, frac // 1000, b"10.0.0.1", raw))
        if writer.pending_bytes > 64 << 20:
            writer.flush()
    writer.close()


def catch_up(data: Path, label: str, workers: int, postgres: str | None = None) -> None:
    """Time ``logmaster index --once``'s work: every indexer process of the settings."""
    index: dict[str, object] = {"workers": workers, "metrics_listen": None}
    if postgres:
        index |= {"backend": "postgres", "postgres_url": postgres}
    indexer = IndexerGroup(Settings(data_dir=data, index=index))
    t0 = time.perf_counter()
    done = indexer.catch_up()
    elapsed = time.perf_counter() - t0
    failures = sum(indexer.stats.failures.values())
    print(
        f"{label:>10}: {done:,} lines in {elapsed:.1f} s = {done / elapsed:,.0f} events/s "
        f"(parse failures {failures:,} = {100 * failures / max(1, done):.1f} %)"
    )
    indexer.close()


def metric(port: int, name: str) -> float:
    try:
        r = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except OSError:
        return 0.0  # still starting (a busy machine can take seconds)
    with r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its living descendants."""
    stats: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        cur = todo.pop()
        total += stats.get(cur, (0, 0.0))[1]
        todo.extend(child for child, (ppid, _) in stats.items() if ppid == cur)
    return total


def live(rate: int, seconds: int, devices: int, tmp: Path, workers: int) -> None:
    data = tmp / "data"
    lines_file = tmp / "mixed.log"
    lines_file.write_bytes(b"\n".join(varied(sample_lines(), 5000)) + b"\n")
    py = sys.executable
    port, mport, iport = 47514, 47515, 47516
    env_args = ["--data-dir", str(data)]
    collector = subprocess.Popen(
        [
            py,
            "-m",
            "logmaster",
            "collect",
            *env_args,
            "--udp",
            f"127.0.0.1:{port}",
            "--metrics",
            f"127.0.0.1:{mport}",
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(3)
    indexer = subprocess.Popen(
        [py, "-m", "logmaster", "index", *env_args],
        stdout=subprocess.DEVNULL,
        env={
            "LOGMASTER_INDEX__METRICS_LISTEN": f"127.0.0.1:{iport}",
            "LOGMASTER_INDEX__WORKERS": str(workers),
            "PATH": "/usr/bin:/bin",
            # Another checkout's code, to compare two versions in one run.
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
            # Other index settings to compare (e.g. LOGMASTER_INDEX__BATCH_LINES=10000).
            **{
                k: v
                for k, v in os.environ.items()
                if k.startswith("LOGMASTER_INDEX__") and not k.endswith(("_LISTEN", "WORKERS"))
            },
        },
    )
    time.sleep(3)
    load = subprocess.Popen(
        [
            py,
            "-m",
            "logmaster",
            "loadgen",
            "--udp",
            f"127.0.0.1:{port}",
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--senders",
            str(devices),
            "--from-file",
            str(lines_file),
            "--json",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    t0 = time.monotonic()
    worst_lag = 0.0
    worst_behind = 0.0
    try:
        while load.poll() is None:
            time.sleep(1)
            worst_lag = max(worst_lag, metric(iport, "logmaster_index_lag_seconds"))
            worst_behind = max(worst_behind, metric(iport, "logmaster_index_bytes_behind"))
        sent_end = time.monotonic() - t0
        assert load.stdout is not None
        sent = json.loads(load.stdout.read().strip().splitlines()[-1])["sent"]
        # loadgen is the only child reaped so far: its whole CPU time, to its last second.
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_cpu = usage.ru_utime + usage.ru_stime
        # Lines the collector still holds are archived in the next moments: wait for all that
        # were sent (less what the kernel dropped), then for the indexer.
        while (
            metric(mport, "logmaster_archive_lines_total")
            + metric(mport, "logmaster_listener_kernel_drops_total")
            < sent
            and time.monotonic() - t0 < seconds + 30
        ):
            time.sleep(0.2)
        archived = metric(mport, "logmaster_archive_lines_total")
        while (
            metric(iport, "logmaster_index_lines_total") < archived
            and time.monotonic() - t0 < seconds + 120
        ):
            time.sleep(0.5)
        done = time.monotonic() - t0
        indexed = metric(iport, "logmaster_index_lines_total")
        # Datagrams the kernel dropped for a full socket buffer (the receiver reads it every 2 s).
        time.sleep(2.5)
        drops = metric(mport, "logmaster_listener_kernel_drops_total")
        cpu = {
            name: tree_cpu(p.pid) for name, p in (("collector", collector), ("indexer", indexer))
        }
    finally:
        for proc in (load, indexer, collector):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    print(
        f"live: sent {sent:,} at {rate:,}/s for {sent_end:.0f} s from {devices} senders; archived "
        f"{archived:,.0f}; indexed {indexed:,.0f} in {done:.1f} s = "
        f"{indexed / done:,.0f} events/s; worst index lag {worst_lag:.1f} s, "
        f"worst backlog {worst_behind / 1e6:.1f} MB; catch-up after load ended "
        f"{done - sent_end:.1f} s; kernel drops {drops:,.0f}"
    )
    per_line = {**cpu, "loadgen": load_cpu}
    print(
        "CPU per archived line: "
        + ", ".join(
            f"{name} {secs / max(archived, 1) * 1e6:.1f} µs" for name, secs in per_line.items()
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=200_000, help="archive lines (catch-up)")
    ap.add_argument("--devices", type=int, default=20, help="devices / day files")
    ap.add_argument(
        "--postgres",
        metavar="URL",
        help="also measure PostgreSQL at this URL "
        "(a scratch database: its index tables are created there)",
    )
    ap.add_argument("--live", type=int, metavar="RATE", help="collector+indexer at RATE msg/s")
    ap.add_argument("--seconds", type=int, default=60, help="duration of --live")
    ap.add_argument("--workers", type=int, default=2, help="indexer processes (index.workers)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lm-bench-index-"))
    try:
        if args.live:
            live(args.live, args.seconds, args.devices, tmp, args.workers)
            return
        lines = varied(sample_lines(), args.lines)
        t0 = time.perf_counter()
        write_archive(tmp / "archive", lines, args.devices)
        print(
            f"archive: {len(lines):,} mixed vendor lines for {args.devices} devices written in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        catch_up(tmp, "sqlite", args.workers)
        size = sum(p.stat().st_size for p in (tmp / "index").glob("*.db*"))
        print(f"{'':>10}  index size {size / 1e6:.0f} MB = {size / len(lines):.0f} bytes/event")
        if args.postgres:
            catch_up(tmp, "postgres", args.workers, args.postgres)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
