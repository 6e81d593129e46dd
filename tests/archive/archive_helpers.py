"""Helpers of the archive tests: archive lines for a device-day and writing them."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from logmaster.archive.line import Clock, format_line, parse_line
from logmaster.archive.verify import DayReport, verify_day
from logmaster.archive.writer import ArchiveWriter, day_path

ZONE = ZoneInfo("Europe/Istanbul")
DAY = dt.date(2026, 11, 28)


def lines_for(
    device: str, day: dt.date = DAY, n: int = 10, start: int = 0, size: int = 40
) -> list[bytes]:
    """``n`` distinct archive lines of ``device`` on the local ``day``, numbered from ``start``."""
    clock = Clock(ZONE)
    midnight = dt.datetime.combine(day, dt.time(), ZONE)
    out = []
    for i in range(start, start + n):
        second = int(midnight.timestamp()) + i % 86400
        stamp = clock.stamp(second)
        assert stamp.day == day
        body = b"<13>Nov 28 10:00:00 %s app: message %06d " % (device.encode(), i)
        raw = body + b"x" * max(0, size - len(body))
        out.append(format_line(stamp, i % 1_000_000, b"10.0.0.1", raw))
    return out


def write_batches(
    root: Path,
    device: str,
    batches: Iterable[list[bytes]],
    day: dt.date = DAY,
    fsync: str = "never",
) -> Path:
    """Write each batch with its own flush through a fresh writer; return the day file."""
    writer = ArchiveWriter(root, fsync=fsync)
    try:
        for batch in batches:
            df = writer.day_file(device, day)
            for line in batch:
                writer.add(df, line)
            assert writer.flush()
    finally:
        writer.close()
    return day_path(root, device, day)


def age(path: Path, seconds: float = 3600) -> None:
    """Make ``path`` look written ``seconds`` ago (a file not being written any more)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def verify(root: Path, device: str, day: dt.date = DAY) -> DayReport:
    return verify_day(device, day, day_path(root, device, day))


def file_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def messages(path: Path) -> list[bytes]:
    return [parse_line(line).raw for line in path.read_bytes().splitlines()]
