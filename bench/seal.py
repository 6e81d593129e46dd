"""Sealing and verification speed: one day of D devices, N lines in total.

Writes the day files directly in the archive format (lines as the collector formats them, each
file with a valid hash chain sidecar, written by the worker processes in parallel), then times:

- ``seal``: ``SealRun.seal_day`` for every device (manifests, Merkle roots, chains checked,
  RSA-3072 signatures; stamp mode ``daily`` with the built-in TSA, so one stamp in all);
- ``compress``: zstd of every sealed day file;
- ``verify``: ``verify_days`` over the compressed day (file hashes, chains, Merkle roots,
  manifest chain, signatures, stamps).

Targets (issue 5): 1,000 devices and 10,000,000 lines sealed in < 10 min, verified in < 5 min.
Run on a quiet machine: ``.venv/bin/python bench/seal.py --devices 1000 --lines 10000000``;
a quick check: ``--devices 100 --lines 100000``. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

from logmaster.archive import chain
from logmaster.archive.line import Clock, format_line
from logmaster.archive.writer import day_path

DAY = dt.date(2026, 11, 20)
ZONE = ZoneInfo("Europe/Istanbul")
MESSAGES = [
    b"<134>Nov 20 %(t)s fw1 filterlog: 5,,,1000000103,igb1,match,pass,out,4,0x0,,64,0,0,DF,6,"
    b"tcp,60,10.0.%(a)d.%(b)d,93.184.216.34,5%(p)04d,443,0,S,1234567,,64240,,mss",
    b"<30>Nov 20 %(t)s gw dhcpd[812]: DHCPACK on 10.0.%(a)d.%(b)d to aa:bb:cc:%(a)02x:%(b)02x:"
    b"01 (host-%(p)d) via eth1",
    b"<14>Nov 20 %(t)s mikrotik srcnat: in:bridge out:ether1, proto TCP (SYN), "
    b"10.0.%(a)d.%(b)d:%(p)d->142.250.%(a)d.%(b)d:443, NAT (10.0.%(a)d.%(b)d:%(p)d->"
    b"203.0.113.7:%(p)d)->142.250.%(a)d.%(b)d:443, len 60",
]


def write_device(args: tuple[Path, str, int, int]) -> int:
    """Write one device's day file and chain sidecar; return its size."""
    root, device, lines, seed = args
    path = day_path(root, device, DAY)
    path.parent.mkdir(parents=True, exist_ok=True)
    clock = Clock(ZONE)
    start = int(dt.datetime.combine(DAY, dt.time(), ZONE).timestamp())
    step = 86_400 / max(1, lines)
    out: list[bytes] = []
    for i in range(lines):
        t = start + int(i * step)
        stamp = clock.stamp(t)
        a, b = (seed + i) % 250, (i * 7) % 250
        msg = MESSAGES[(seed + i) % len(MESSAGES)] % {
            b"t": stamp.prefix[11:],
            b"a": a,
            b"b": b,
            b"p": (i * 13) % 60000,
        }
        out.append(format_line(stamp, (i * 997) % 1_000_000, b"10.%d.0.1" % (seed % 250), msg))
    head = chain.genesis(device, DAY)
    side = [chain.header(device, DAY)]
    size = 0
    # One record per 10,000 lines, as a writer flushing a busy device would leave them.
    for lo in range(0, lines, 10_000):
        part = out[lo : lo + 10_000]
        tags = bytearray()
        head = chain.extend(head, part, tags)
        size += sum(len(x) for x in part)
        side.append(chain.Record(min(lines, lo + 10_000), size, head, bytes(tags), "bench").dumps())
    path.write_bytes(b"".join(out))
    chain.sidecar_path(path).write_bytes(b"".join(side))
    old = time.time() - 86_400
    for p in (path, chain.sidecar_path(path)):
        os.utime(p, (old, old))
    return size


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (load-independent figure)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def generate(root: Path, devices: int, lines: int, workers: int) -> int:
    # Uneven devices, as on a real site: a few busy firewalls, many quiet switches.
    weights = [1 + (i % 10 == 0) * 9 for i in range(devices)]
    total_w = sum(weights)
    counts = [max(1, lines * w // total_w) for w in weights]
    counts[0] += lines - sum(counts)
    jobs = [(root, f"dev{i:04d}", counts[i], i) for i in range(devices)]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return sum(pool.map(write_device, jobs, chunksize=8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--data-dir", type=Path, default=None, help="Default: a temporary dir.")
    parser.add_argument("--keep", action="store_true", help="Keep the data directory.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from logmaster.archive.compress import compress_sealed
    from logmaster.archive.keys import KeyStore
    from logmaster.archive.manifest import parts
    from logmaster.archive.seal import SealRun
    from logmaster.archive.verdict import verify_days
    from logmaster.config import load_settings

    base = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-seal-"))
    settings = load_settings(
        None,
        data_dir=base,
        seal={"stamp_mode": "daily", "workers": args.workers, "compression": "zstd"},
    )
    root = settings.archive_dir
    try:
        t0 = time.perf_counter()
        size = generate(root, args.devices, args.lines, args.workers)
        gen_s = time.perf_counter() - t0
        os.sync()  # the collector has synced its day files long before a seal: not timed
        print(
            f"generated {args.lines:,} lines, {args.devices:,} devices, "
            f"{size / 1e6:,.0f} MB in {gen_s:.1f} s"
        )
        KeyStore(base / "keys").init("rsa3072")

        t0, c0 = time.perf_counter(), cpu_s()
        results = SealRun(settings).seal_day(DAY)
        seal_s, seal_cpu = time.perf_counter() - t0, cpu_s() - c0
        states: dict[str, int] = {}
        for r in results:
            states[r.state] = states.get(r.state, 0) + 1
        print(
            f"seal:     {seal_s:7.1f} s  {args.lines / seal_s:12,.0f} lines/s  "
            f"{size / 1e6 / seal_s:7.1f} MB/s  cpu {seal_cpu:.1f} s  {states}"
        )

        all_parts = [p for d in sorted(os.listdir(root)) for p in parts(root, d, DAY)]
        t0, c0 = time.perf_counter(), cpu_s()
        counts = compress_sealed(root, all_parts, "zstd", None, force=True)
        comp_s, comp_cpu = time.perf_counter() - t0, cpu_s() - c0
        packed = sum(
            (root / p.relative).with_suffix(".log.zst").stat().st_size
            for p in all_parts
            if (root / p.relative).with_suffix(".log.zst").exists()
        )
        print(
            f"compress: {comp_s:7.1f} s  {size / 1e6 / comp_s:7.1f} MB/s  "
            f"ratio {size / max(1, packed):.1f}x  cpu {comp_cpu:.1f} s  {counts}"
        )

        t0, c0 = time.perf_counter(), cpu_s()
        verdicts = verify_days(settings, workers=args.workers)
        verify_s, verify_cpu = time.perf_counter() - t0, cpu_s() - c0
        summary: dict[str, int] = {}
        for v in verdicts:
            summary[v.verdict] = summary.get(v.verdict, 0) + 1
        print(
            f"verify:   {verify_s:7.1f} s  {args.lines / verify_s:12,.0f} lines/s  "
            f"{size / 1e6 / verify_s:7.1f} MB/s  cpu {verify_cpu:.1f} s  {summary}"
        )
        record = {
            "lines": args.lines,
            "devices": args.devices,
            "bytes": size,
            "seal_s": round(seal_s, 2),
            "seal_cpu_s": round(seal_cpu, 2),
            "compress_s": round(comp_s, 2),
            "compress_cpu_s": round(comp_cpu, 2),
            "verify_s": round(verify_s, 2),
            "verify_cpu_s": round(verify_cpu, 2),
        }
        print(json.dumps(record))
    finally:
        if not args.keep and args.data_dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
