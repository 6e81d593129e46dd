"""Helpers of the backup tests: day files of past days written by the real archive writer, and
the ``logmaster`` command line as a subprocess."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from logmaster.archive.line import Clock, format_line
from logmaster.archive.writer import ArchiveWriter, day_path

ZONE = ZoneInfo("Europe/Istanbul")


def write_day(root: Path, device: str, day: dt.date, n: int = 50, batches: int = 2) -> Path:
    """``n`` lines of ``device`` on the local ``day`` in ``batches`` flushes; returns the file."""
    clock = Clock(ZONE)
    midnight = int(dt.datetime.combine(day, dt.time(), ZONE).timestamp())
    lines = [
        format_line(
            clock.stamp(midnight + 60 * i),
            i,
            b"10.0.0.1",
            b"<13>%s app: message %06d" % (device.encode(), i),
        )
        for i in range(n)
    ]
    writer = ArchiveWriter(root, fsync="never")
    try:
        step = max(1, n // batches)
        for start in range(0, n, step):
            df = writer.day_file(device, day)
            for line in lines[start : start + step]:
                writer.add(df, line)
            assert writer.flush()
    finally:
        writer.close()
    path = day_path(root, device, day)
    then = time.time() - 3600  # a file nobody writes any more
    for p in (path, path.with_name(path.name + ".chain")):
        os.utime(p, (then, then))
    return path


def cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "logmaster", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=300,
        check=False,
    )
    if check:
        assert r.returncode == 0, f"logmaster {' '.join(args)}: {r.stdout}{r.stderr}"
    return r
