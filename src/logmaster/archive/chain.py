"""The running hash chain of a day file and its sidecar ``<DD>.log.chain``.

``h_0 = SHA-256("logmaster-archive-v1\\n" <device slug> "\\n" <YYYY-MM-DD> "\\n")`` binds a chain
to its device and day, so a day file moved to another device or date does not verify.
``h_i = SHA-256(h_{i-1} || line_i)`` where ``line_i`` is the i-th line of the file *including*
its terminating LF.

The sidecar is JSON lines. The first line is a header; every flush of the writer appends one
record::

    {"v": 1, "device": "gw1", "date": "2026-11-28", "genesis": "<hex h_0>"}
    {"lines": 1200, "size": 301234, "sha256": "<hex h_1200>", "tags": "<base64>", "at": "..."}

``lines``/``size``/``sha256`` state the chain after the record's last line; ``tags`` holds the
first 8 bytes of every ``h_i`` the record covers, so verification can name the exact first line
that no longer matches instead of a range. It adds about 11 bytes per line.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TAG_BYTES = 8
SIDECAR_SUFFIX = ".chain"


def genesis(device: str, day: dt.date) -> bytes:
    return hashlib.sha256(f"logmaster-archive-v1\n{device}\n{day.isoformat()}\n".encode()).digest()


def extend(head: bytes, lines: Iterable[bytes], tags: bytearray) -> bytes:
    """Run the chain from ``head`` over ``lines``; append each link's tag; return the new head."""
    sha = hashlib.sha256
    for line in lines:
        head = sha(head + line).digest()
        tags += head[:TAG_BYTES]
    return head


@dataclass
class Record:
    """One sidecar record: the chain state after ``lines`` lines and ``size`` bytes."""

    lines: int
    size: int
    sha256: bytes
    tags: bytes
    at: str = ""
    resync: bool = False

    def dumps(self) -> bytes:
        body: dict[str, Any] = {
            "lines": self.lines,
            "size": self.size,
            "sha256": self.sha256.hex(),
            "tags": base64.b64encode(self.tags).decode(),
            "at": self.at,
        }
        if self.resync:
            body["resync"] = True
        return json.dumps(body, separators=(",", ":")).encode() + b"\n"


@dataclass
class Sidecar:
    """What a sidecar file says: its header and its records, in order."""

    device: str
    day: dt.date
    genesis: bytes
    records: list[Record]
    # Bytes at the end that are not a complete record (a torn write); recovery rewrites them.
    torn_tail: int = 0
    valid_size: int = 0


def header(device: str, day: dt.date) -> bytes:
    body = {
        "v": 1,
        "device": device,
        "date": day.isoformat(),
        "genesis": genesis(device, day).hex(),
    }
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def sidecar_path(day_file: Path) -> Path:
    return day_file.with_name(day_file.name + SIDECAR_SUFFIX)


class SidecarError(ValueError):
    """The sidecar file is unreadable or its header does not match its day file."""


def read_sidecar(path: Path) -> Sidecar:
    data = path.read_bytes()
    if not data:
        raise SidecarError(f"{path}: empty chain file")
    lines = data.split(b"\n")
    try:
        head = json.loads(lines[0])
        sidecar = Sidecar(
            head["device"],
            dt.date.fromisoformat(head["date"]),
            bytes.fromhex(head["genesis"]),
            [],
        )
    except (ValueError, KeyError) as exc:
        raise SidecarError(f"{path}: unreadable chain header: {exc}") from exc
    offset = len(lines[0]) + 1
    sidecar.valid_size = offset
    for raw in lines[1:]:
        if not raw:
            offset += 1
            continue
        try:
            obj = json.loads(raw)
            record = Record(
                obj["lines"],
                obj["size"],
                bytes.fromhex(obj["sha256"]),
                base64.b64decode(obj["tags"], validate=True),
                obj.get("at", ""),
                bool(obj.get("resync", False)),
            )
        except (ValueError, KeyError):
            # Only the last line may be torn by a crash; anything after it is ignored too.
            sidecar.torn_tail = len(data) - offset
            break
        sidecar.records.append(record)
        offset += len(raw) + 1
        sidecar.valid_size = offset
    sidecar.valid_size = min(sidecar.valid_size, len(data))
    return sidecar
