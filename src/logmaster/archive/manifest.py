"""The manifest of a sealed device-day and the one pass over a day file that fills it.

Files of a device-day in ``<archive>/<device>/<YYYY>/<MM>/``::

    28.log                 the day file (28.log.zst / 28.log.gz once compressed)
    28.log.chain           its hash chain (archive/chain.py)
    28.manifest.json       the manifest: these exact bytes are signed and stamped
    28.manifest.json.p7s   detached CMS signature (DER)
    28.manifest.json.tsr   RFC 3161 TimeStampResp (DER); missing while the stamp is pending
    28.s1.log ...          supplement 1: lines that arrived after the day was sealed, with its
                           own chain, manifest, signature and stamp (28.s1.manifest.json ...)

A day file and its supplements are the *parts* of a device-day (part 0 is the day file). The
manifest (format ``logmaster-manifest/1``) is UTF-8 JSON with sorted keys, 2-space indent and a
trailing newline. Its ``previous_manifest_sha256`` is the SHA-256 of the manifest file the
device sealed just before (``sequence`` - 1), so manifests form one chain per device: a removed
day or a manifest put in another's place breaks it. A device's first manifest says
``"genesis": true``. A day on which an approved device sent nothing gets a manifest too, with
``lines`` 0 and ``file`` null: a declared silence.

:func:`scan_file` reads a part once, streaming, and computes everything the manifest states of
it (hash, Merkle root, chain head, times, gaps, counters, a clock-offset sample); verification
runs the same pass and compares.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from logmaster.archive import chain
from logmaster.archive.merkle import EMPTY_ROOT, LEAF, NODE, node_hash
from logmaster.archive.reader import open_day, resolve
from logmaster.archive.writer import day_path

FORMAT = "logmaster-manifest/1"
READ_CHUNK = 8 << 20
CLOCK_SAMPLES = 200
_SUPPLEMENT = re.compile(r"^s([1-9]\d*)\.(?:log|manifest\.json)")


# -- parts and their file names -------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One sealed unit of a device-day: the day file (index 0) or supplement ``index``."""

    root: Path  # the archive root
    device: str
    day: dt.date
    index: int = 0

    @property
    def folder(self) -> Path:
        return day_path(self.root, self.device, self.day).parent

    @property
    def stem(self) -> str:
        """``28`` for the day file, ``28.s1`` for supplement 1."""
        return f"{self.day:%d}" if self.index == 0 else f"{self.day:%d}.s{self.index}"

    @property
    def log(self) -> Path:
        """The day file as written (it may exist only as its .zst/.gz twin)."""
        return self.folder / f"{self.stem}.log"

    @property
    def chain(self) -> Path:
        return chain.sidecar_path(self.log)

    @property
    def manifest(self) -> Path:
        return self.folder / f"{self.stem}.manifest.json"

    @property
    def p7s(self) -> Path:
        return self.folder / f"{self.stem}.manifest.json.p7s"

    @property
    def tsr(self) -> Path:
        return self.folder / f"{self.stem}.manifest.json.tsr"

    @property
    def relative(self) -> str:
        """The day file's path relative to the archive root (as the index names it)."""
        return self.log.relative_to(self.root).as_posix()

    @property
    def label(self) -> str:
        return f"{self.device} {self.day}" + (f" supplement {self.index}" if self.index else "")


def parts(root: Path, device: str, day: dt.date) -> list[Part]:
    """The parts of a device-day that exist (a day file, a manifest or a chain), in order."""
    folder = day_path(root, device, day).parent
    found: set[int] = set()
    if folder.is_dir():
        for p in folder.glob(f"{day:%d}.*"):
            rest = p.name[3:]
            if rest.startswith(("log", "manifest.json")):
                found.add(0)
            elif (m := _SUPPLEMENT.match(rest)) is not None:
                found.add(int(m.group(1)))
    return [Part(root, device, day, i) for i in sorted(found)]


def next_supplement(day_file: Path) -> Path:
    """Where lines for an already sealed day go: the first supplement not sealed yet."""
    dd = day_file.name.split(".")[0]
    k = 1
    while (day_file.parent / f"{dd}.s{k}.manifest.json").exists():
        k += 1
    return day_file.parent / f"{dd}.s{k}.log"


# -- the manifest file ----------------------------------------------------------------------


def dumps(manifest: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and stamped."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def load(path: Path) -> tuple[bytes, dict[str, Any]]:
    """(bytes, parsed) of a manifest file; ValueError when it is not a manifest."""
    data = path.read_bytes()
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"{path.name} is not JSON: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not a {FORMAT} manifest")
    return data, obj


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the pass over a part -------------------------------------------------------------------


@dataclass
class Scan:
    """What one pass over a day file finds."""

    size: int = 0
    lines: int = 0
    sha256: str = hashlib.sha256(b"").hexdigest()
    merkle_root: str = EMPTY_ROOT.hex()
    chain_head: str = ""
    # Sum of the leaf hashes mod 2**256: the same for the same lines in any order, so a
    # verification can tell lines reordered from lines changed.
    lines_sum: str = "0" * 64
    # first 8 bytes of every chain link, when asked for (verification names the first bad line)
    tags: bytearray | None = None
    first_received: dt.datetime | None = None
    last_received: dt.datetime | None = None
    gaps: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    truncated: int = 0
    incomplete: int = 0
    invalid_utf8_bytes: int = 0
    torn_tail: int = 0  # bytes after the last LF
    clock_offsets: list[float] = field(default_factory=list)


_ESCAPE = re.compile(rb"\\(x[0-9a-f]{2}|.)")
_TRUNCATED = re.compile(rb"\\\[truncated \d+\](?:\\\[incomplete\])?\n")


def _stamp(line: bytes) -> dt.datetime:
    return dt.datetime.fromisoformat(line[: line.index(b" ")].decode())


def scan_file(
    path: Path,
    device: str,
    day: dt.date,
    *,
    gap_s: float = 3600.0,
    zone: ZoneInfo | None = None,
    want_tags: bool = False,
    expected_lines: int = 0,
) -> Scan:
    """Hash, Merkle root, chain, times, gaps, counters and clock sample of one day file.

    ``path`` may be compressed. Lines are taken up to the last LF; bytes after it (a torn line)
    are counted in ``torn_tail`` and hashed with the file, since they are in it.
    """
    scan = Scan(tags=bytearray() if want_tags else None)
    sha = hashlib.sha256
    file_hash = sha()
    head = chain.genesis(device, day)
    stack: list[bytes] = []
    pop, push = stack.pop, stack.append
    tags = scan.tags
    n = 0
    size = 0
    carry = b""
    minute = b""
    prev = b""
    threshold = dt.timedelta(seconds=gap_s)
    stride = max(1, expected_lines // CLOCK_SAMPLES)
    samples: list[bytes] = []
    multiset = 0
    lf = b"\n"
    with open_day(path) as fh:
        while True:
            chunk = fh.read(READ_CHUNK)
            if not chunk:
                break
            file_hash.update(chunk)
            size += len(chunk)
            end = chunk.rfind(lf) + 1
            if end == 0:
                carry += chunk
                continue
            block = carry + chunk[:end] if carry else chunk[:end]
            carry = chunk[end:]
            _count_markers(block, scan)
            for line in block.split(lf)[:-1]:
                head = sha(head + line + lf).digest()
                if tags is not None:
                    tags += head[:8]
                h = sha(LEAF + line).digest()
                multiset += int.from_bytes(h)
                k = n
                while k & 1:
                    h = sha(NODE + pop() + h).digest()
                    k >>= 1
                push(h)
                if n % stride == 0 and len(samples) < CLOCK_SAMPLES:
                    samples.append(line)
                n += 1
                # A gap longer than a minute always crosses a minute boundary: only lines that
                # start a new minute need their time parsed.
                if line[:16] != minute:
                    minute = line[:16]
                    if prev:
                        a, b = _stamp(prev), _stamp(line)
                        if b - a > threshold:
                            scan.gaps.append((a, b))
                    else:
                        scan.first_received = _stamp(line)
                prev = line
    scan.torn_tail = len(carry)
    scan.size = size
    scan.lines = n
    scan.sha256 = file_hash.hexdigest()
    if stack:
        acc = stack[-1]
        for h in reversed(stack[:-1]):
            acc = node_hash(h, acc)
        scan.merkle_root = acc.hex()
    scan.chain_head = head.hex()
    scan.lines_sum = (multiset % (1 << 256)).to_bytes(32).hex()
    if prev:
        scan.last_received = _stamp(prev)
    if zone is not None:
        scan.clock_offsets = _clock_offsets(samples, zone)
    return scan


def _count_markers(block: bytes, scan: Scan) -> None:
    """Markers and escaped bytes of a block of whole lines; cheap when there are none."""
    if b"\\x" in block:
        scan.invalid_utf8_bytes += sum(
            1 for m in _ESCAPE.finditer(block) if len(m.group(1)) == 3 and m.group(1) != b"x00"
        )
    if b"\\[" in block:
        # Only a marker ends a line with "]" after an unescaped backslash; tokenizing escapes
        # from the line start tells "\\[" (an escaped backslash, then "[") apart.
        for line in block.split(b"\n"):
            if not line.endswith(b"]"):
                continue
            from logmaster.archive.line import parse_line

            try:
                marker = parse_line(line).marker
            except ValueError:
                continue
            scan.truncated += marker.count(b"\\[truncated ")
            scan.incomplete += marker.count(b"\\[incomplete]")


def _clock_offsets(samples: list[bytes], zone: ZoneInfo) -> list[float]:
    """Device time minus receive time, seconds, for sampled lines whose header has a time."""
    from logmaster.archive.line import parse_line
    from logmaster.parsers import read_syslog

    out: list[float] = []
    for line in samples:
        try:
            entry = parse_line(line)
            syslog = read_syslog(entry.raw.decode("utf-8", "replace"), zone, entry.received)
        except (ValueError, IndexError):
            continue
        if syslog.timestamp is not None and syslog.timestamp.tzinfo is not None:
            out.append((syslog.timestamp - entry.received).total_seconds())
    return out


def clock_summary(offsets: list[float]) -> dict[str, Any] | None:
    if not offsets:
        return None
    return {
        "sampled_lines": len(offsets),
        "median_s": round(statistics.median(offsets), 3),
        "max_abs_s": round(max(abs(o) for o in offsets), 3),
    }


def silence_gaps(
    scan: Scan | None, day: dt.date, zone: ZoneInfo, gap_s: float, whole_day: bool
) -> list[dict[str, Any]]:
    """Gaps longer than ``gap_s``: between lines and, for the day file, from/to local midnight."""
    start = dt.datetime.combine(day, dt.time(), zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    if scan is None or scan.first_received is None or scan.last_received is None:
        if whole_day:
            spans.append((start, end))
    else:
        if whole_day:
            spans.append((start, scan.first_received))
        spans.extend(scan.gaps)
        if whole_day:
            spans.append((scan.last_received, end))
    return [
        {
            "from": a.isoformat(),
            "to": b.isoformat(),
            "seconds": round((b - a).total_seconds()),
        }
        for a, b in spans
        if (b - a).total_seconds() > gap_s
    ]


def actual_file(part: Part) -> Path | None:
    """The file on disk holding the part's lines (plain or compressed)."""
    return resolve(part.log)
