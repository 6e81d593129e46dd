"""Recomputing the hash chains of day files: ``logmaster archive verify`` and ``stats``.

A day file verifies when its sidecar header names the same device and day, every line's chain
link matches the tag recorded for it, and every record's line count, size and head match. The
first line that does not match is named: a changed, inserted, deleted or reordered line breaks the
link of that line and of every line after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from logmaster.archive import chain
from logmaster.archive.reader import open_day, resolve

if TYPE_CHECKING:
    from logmaster.archive.manifest import Scan

# A file written within this many seconds may have lines whose chain record is a flush away.
OPEN_GRACE_S = 60.0


@dataclass
class DayReport:
    device: str
    day: dt.date
    path: Path
    lines: int = 0
    size: int = 0
    recorded_lines: int = 0
    problems: list[str] = field(default_factory=list)
    first_bad_line: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


SUPPLEMENT = "[0-9][0-9].s[0-9]*.log"


def day_files(
    root: Path,
    device: str | None = None,
    day: dt.date | None = None,
    compressed: bool = False,
    supplements: bool = False,
) -> Iterator[tuple[str, dt.date, Path]]:
    """(device, day, path) of every day file under the archive root, in order.

    With ``compressed`` also the sealed day files that exist only as ``.log.zst``/``.log.gz``,
    named by their ``.log`` path (open them with ``reader.open_day``). With ``supplements``
    also the late-line supplements ``<DD>.s<k>.log`` of sealed days (after the day's file).
    """
    if not root.is_dir():
        return
    for dev_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if device and dev_dir.name != device:
            continue
        patterns = ["[0-9][0-9].log"]
        if supplements:
            patterns.append(SUPPLEMENT)
        paths: set[Path] = set()
        for pattern in patterns:
            paths.update(dev_dir.glob(f"[0-9][0-9][0-9][0-9]/[0-9][0-9]/{pattern}"))
            if compressed:
                for suffix in ("zst", "gz"):
                    found = dev_dir.glob(f"[0-9][0-9][0-9][0-9]/[0-9][0-9]/{pattern}.{suffix}")
                    paths.update(p.with_suffix("") for p in found)
        for path in sorted(paths, key=_file_order):
            try:
                d = dt.date(int(path.parent.parent.name), int(path.parent.name), int(path.name[:2]))
            except ValueError:
                continue
            if day is None or d == day:
                yield dev_dir.name, d, path


def _file_order(path: Path) -> tuple[str, int]:
    """A day's file, then its supplements in number order (s10 after s9)."""
    parts = path.name.split(".")
    k = int(parts[1][1:]) if len(parts) == 3 and parts[1][1:].isdigit() else 0
    return (str(path.parent / parts[0]), k)


def verify_day(device: str, day: dt.date, path: Path) -> DayReport:
    report = DayReport(device, day, path)
    side = chain.sidecar_path(path)
    if not side.exists():
        report.problems.append(f"no chain file {side.name}: the chain cannot be checked")
        return report
    try:
        sidecar = chain.read_sidecar(side)
    except chain.SidecarError as exc:
        report.problems.append(str(exc))
        return report
    if (sidecar.device, sidecar.day) != (device, day):
        report.problems.append(
            f"chain file belongs to {sidecar.device} {sidecar.day}, not {device} {day}: "
            "the file was moved or swapped"
        )
        return report
    if sidecar.genesis != chain.genesis(device, day):
        report.problems.append("chain file genesis does not match its device and day")
        return report
    if sidecar.torn_tail:
        report.notes.append(
            "last chain record torn by a crash (repaired when the collector next writes this day)"
        )

    expected, boundaries = _expected(sidecar, report)
    report.recorded_lines = sidecar.records[-1].lines if sidecar.records else 0
    head = sidecar.genesis
    sha = hashlib.sha256
    size = 0
    n = 0
    with open_day(path) as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                report.notes.append(
                    f"line {n + 1} is torn (no line end): cut when the "
                    "collector next writes this day"
                )
                break
            head = sha(head + line).digest()
            n += 1
            size += len(line)
            if n <= len(expected) and head[: chain.TAG_BYTES] != expected[n - 1]:
                report.first_bad_line = n
                report.problems.append(
                    f"line {n} does not match its chain link: a line was changed, inserted, "
                    "deleted or moved at or before it"
                )
                break
            record = boundaries.get(n)
            if record is not None and (record.size != size or record.sha256 != head):
                report.first_bad_line = n
                report.problems.append(f"chain record at line {n} does not match the file")
                break
    report.lines = n
    report.size = size
    if report.problems:
        return report
    if n < report.recorded_lines:
        report.first_bad_line = n + 1
        report.problems.append(
            f"file ends after line {n} but the chain records {report.recorded_lines} lines: "
            "lines were deleted from the end or the file was truncated"
        )
    elif n > report.recorded_lines:
        extra = n - report.recorded_lines
        recent = time.time() - os.stat(resolve(path) or path).st_mtime < OPEN_GRACE_S
        if recent:
            report.notes.append(f"{extra} newest lines not yet in a chain record (being written)")
        else:
            report.first_bad_line = report.recorded_lines + 1
            report.problems.append(
                f"{extra} lines after line {report.recorded_lines} are in no chain record: "
                "appended by something other than the collector"
            )
    return report


def _expected(
    sidecar: chain.Sidecar, report: DayReport
) -> tuple[list[bytes], dict[int, chain.Record]]:
    """Per-line tags in effect and the records by line count (the last chain run only)."""
    tags: list[bytes] = []
    boundaries: dict[int, chain.Record] = {}
    for record in sidecar.records:
        if record.resync:
            report.problems.append(
                f"chain restarted at {record.at or 'an unknown time'}: the collector found this "
                "file shorter than its chain said (lines lost or altered before then)"
            )
            tags, boundaries = [], {}
        blob = record.tags
        tags.extend(blob[i : i + chain.TAG_BYTES] for i in range(0, len(blob), chain.TAG_BYTES))
        boundaries[record.lines] = record
    return tags, boundaries


@dataclass
class DayStats:
    device: str
    day: dt.date
    lines: int
    size: int
    state: str


def stats_day(device: str, day: dt.date, path: Path) -> DayStats:
    """Cheap figures from the sidecar (no rehash): lines, bytes, chain state."""
    size = path.stat().st_size
    side = chain.sidecar_path(path)
    try:
        sidecar = chain.read_sidecar(side)
    except (OSError, chain.SidecarError):
        return DayStats(device, day, 0, size, "no chain")
    last = sidecar.records[-1] if sidecar.records else None
    lines = last.lines if last else 0
    chained = last.size if last else 0
    if any(r.resync for r in sidecar.records):
        state = "resynced"
    elif chained == size:
        state = "chained"
    elif chained < size:
        state = f"open (+{size - chained} bytes unrecorded)"
    else:
        state = "short"
    return DayStats(device, day, lines, size, state)


def chain_problems(device: str, day: dt.date, path: Path, side: Path, scan: Scan) -> list[str]:
    """The chain check of a file already read by ``manifest.scan_file(..., want_tags=True)``.

    Same findings as :func:`verify_day` without reading the file again: the scan's chain links
    are compared with the sidecar's tags and its last record.
    """
    if not side.exists():
        return [f"no chain file {side.name}: the chain cannot be checked"]
    try:
        sidecar = chain.read_sidecar(side)
    except chain.SidecarError as exc:
        return [str(exc)]
    if (sidecar.device, sidecar.day) != (device, day):
        return [
            f"chain file belongs to {sidecar.device} {sidecar.day}, not {device} {day}: "
            "the file was moved or swapped"
        ]
    if sidecar.genesis != chain.genesis(device, day):
        return ["chain file genesis does not match its device and day"]
    if any(r.resync for r in sidecar.records) or scan.tags is None:
        return verify_day(device, day, path).problems
    expected = b"".join(r.tags for r in sidecar.records)
    got = bytes(scan.tags)
    recorded = sidecar.records[-1].lines if sidecar.records else 0
    common = min(len(expected), len(got))
    if got[:common] != expected[:common]:
        step = chain.TAG_BYTES
        first = next(
            i for i in range(0, common, step) if got[i : i + step] != expected[i : i + step]
        )
        return [
            f"line {first // step + 1} does not match its chain link: a line was changed, "
            "inserted, deleted or moved at or before it"
        ]
    if scan.lines < recorded:
        return [
            f"file ends after line {scan.lines} but the chain records {recorded} lines: "
            "lines were deleted from the end or the file was truncated"
        ]
    if scan.lines > recorded:
        return [
            f"{scan.lines - recorded} lines after line {recorded} are in no chain record: "
            "appended by something other than the collector"
        ]
    last = sidecar.records[-1] if sidecar.records else None
    if last is not None and (
        last.sha256.hex() != scan.chain_head or last.size != scan.size - scan.torn_tail
    ):
        return [f"chain record at line {last.lines} does not match the file"]
    return []
