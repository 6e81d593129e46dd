"""The extract of an evidence bundle: lines of sealed parts with their Merkle inclusion proofs.

:func:`search_offsets` asks the index where a query's lines are (archive file + byte offset);
:func:`prove` reads a part once and returns each wanted line with its RFC 6962 audit path, in
the format of ``merkle.make_proof`` and checked with ``merkle.check_proof``. One pass serves
any number of proofs (``merkle.audit_paths``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from logmaster.archive import merkle
from logmaster.archive.manifest import Part
from logmaster.archive.reader import open_day

if TYPE_CHECKING:
    from logmaster.archive.bundle import Entry
    from logmaster.config import Settings

CHUNK = 1 << 20
MAX_EXTRACT_LINES = 100_000


class ExtractError(Exception):
    """Lines that cannot be extracted; the message says why and what to do."""


@dataclass
class Extracted:
    part: Part
    number: int  # 1-based line number
    offset: int
    line: bytes
    proof: dict[str, Any]

    @property
    def proof_dir(self) -> str:
        day = self.part.day.isoformat() + (f".s{self.part.index}" if self.part.index else "")
        return f"extract/proofs/{self.part.device}/{day}/{self.number}"


def _lines(part: Part) -> Iterator[tuple[int, bytes]]:
    """(offset, line without LF) of every whole line of a part (a torn tail is not a line)."""
    offset = 0
    carry = b""
    with open_day(part.log) as fh:
        while chunk := fh.read(CHUNK):
            block = carry + chunk
            start = 0
            while (end := block.find(b"\n", start)) >= 0:
                yield offset, block[start:end]
                offset += end + 1 - start
                start = end + 1
            carry = block[start:]


def prove(entry: Entry, offsets: set[int]) -> list[Extracted]:
    """Merkle inclusion proofs of the lines starting at ``offsets`` of a sealed part.

    Each proof has the format of ``merkle.make_proof`` and is checked with
    ``merkle.check_proof`` against the manifest's root and line count before it is returned.
    """
    found: dict[int, tuple[int, bytes]] = {}  # leaf index -> (offset, line)
    for i, (off, line) in enumerate(_lines(entry.part)):
        if off in offsets:
            found[i] = (off, line)
    missing = offsets - {off for off, _ in found.values()}
    if missing:
        raise ExtractError(
            f"{entry.part.label}: no line starts at byte offset(s) "
            f"{', '.join(map(str, sorted(missing)[:5]))}; reindex the day (logmaster reindex)"
        )
    size = int(entry.manifest.get("lines") or 0)
    root = str(entry.manifest.get("merkle_root"))
    targets = sorted(found)
    leaves = (merkle.leaf_hash(line) for _off, line in _lines(entry.part))
    try:
        _root, paths = merkle.audit_paths(leaves, size, targets)
    except (IndexError, ValueError) as exc:
        raise ExtractError(
            f"{entry.part.label}: the day file no longer matches its manifest ({exc}); "
            "run logmaster verify"
        ) from exc
    out = []
    for t in targets:
        off, line = found[t]
        proof = merkle.proof_dict(line, t, size, paths[t])
        try:
            merkle.check_proof(proof, expected_root=root, expected_size=size)
        except merkle.ProofError as exc:
            raise ExtractError(
                f"{entry.part.label} line {t + 1}: the day file no longer matches its manifest "
                f"({exc}); run logmaster verify"
            ) from exc
        out.append(Extracted(entry.part, t + 1, off, line, proof))
    return out


def search_offsets(
    settings: Settings, device: str, first: dt.date, last: dt.date, query: str, zone: Any
) -> dict[str, set[int]]:
    """Archive file (relative path) -> offsets of the lines the query matches on the device."""
    from logmaster.cluster import local_rel
    from logmaster.index import open_index
    from logmaster.index.base import SearchRequest
    from logmaster.index.query import QueryError, parse_query

    try:
        node = parse_query(query, zone=zone)
    except QueryError as exc:
        raise ExtractError(f"--query: {exc}") from exc
    # Event times may differ from the archive day (device clocks); the day is filtered by file.
    start = dt.datetime.combine(first - dt.timedelta(days=2), dt.time(), zone)
    end = dt.datetime.combine(last + dt.timedelta(days=3), dt.time(), zone)
    backend = open_index(settings)
    found: dict[str, set[int]] = {}
    total = 0
    cursor: str | None = None
    try:
        while True:
            page = backend.search(
                SearchRequest(node, start, end, 1000, cursor, frozenset({device}))
            )
            for hit in page.hits:
                if not first <= hit.day <= last:
                    continue
                file, offset = hit.event.get("log.file.path"), hit.event.get("log.offset")
                # Lines of this node's archive only (a shared index names every node's files).
                rel = local_rel(str(file), settings.cluster.node) if file is not None else None
                if rel is None or offset is None:
                    continue
                found.setdefault(rel, set()).add(int(offset))
                total += 1
            if total > MAX_EXTRACT_LINES:
                raise ExtractError(
                    f"the query matches more than {MAX_EXTRACT_LINES:,} lines: narrow it, or "
                    "export the days without --query (the day files are complete evidence)"
                )
            cursor = page.cursor
            if cursor is None:
                break
    finally:
        backend.close()
    return found
