"""Compressing sealed day files: ``28.log`` becomes ``28.log.zst`` (or ``.gz``).

Only a sealed part is compressed (its manifest states the SHA-256 of the uncompressed bytes,
so compression changes nothing that is verified). The compressed file is written next to the
day file under a temporary name, synced, read back and checked against the manifest's SHA-256,
then renamed into place; only then is the plain file removed. A crash at any point leaves
either the plain file or a complete, checked compressed file (a left-over temporary file is
removed on the next attempt).

A part whose lines the index has not read completely is left uncompressed (the indexer reads
plain day files) unless ``force``; the sealer tries again on its next pass.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Literal

import zstandard

from logmaster.archive import manifest as mf
from logmaster.archive.files import sync_filesystem
from logmaster.archive.manifest import Part
from logmaster.archive.reader import open_day

log = logging.getLogger(__name__)

Method = Literal["zstd", "gzip", "none"]
SUFFIX = {"zstd": ".zst", "gzip": ".gz"}
# zstd's default level. Measured on bench/seal.py lines: ~150 MB/s per core, ~9x smaller;
# level 6 gave 10.7x at a third of the speed.
ZSTD_LEVEL = 3
CHUNK = 4 << 20


class CompressError(Exception):
    pass


def compress_part(
    part: Part, method: Method, indexed: dict[str, tuple[int, int]] | None, force: bool = False
) -> str:
    """Compress one sealed part; return what happened (compressed, skipped: why)."""
    staged = _stage(part, method, indexed, force)
    if isinstance(staged, str):
        return staged
    sync_filesystem(part.folder)
    _finish([staged])
    return "compressed"


def compress_sealed(
    root: Path,
    parts: list[Part],
    method: Method,
    indexed: dict[str, tuple[int, int]] | None,
    force: bool = False,
) -> dict[str, int]:
    """Compress sealed parts; count outcomes by their text.

    Every compressed file is written and checked first, then one syncfs(2) makes them all
    durable before any plain file is removed: two syncs for a thousand files, not two each.
    """
    counts: dict[str, int] = {}
    staged: list[tuple[Path, Path, Path]] = []
    for part in parts:
        try:
            outcome = _stage(part, method, indexed, force)
        except (OSError, ValueError, CompressError) as exc:
            log.error("Compression failed.", extra={"part": part.label, "error": str(exc)})
            outcome = "failed"
        if isinstance(outcome, tuple):
            staged.append(outcome)
            outcome = "compressed"
        counts[outcome] = counts.get(outcome, 0) + 1
    if staged:
        sync_filesystem(root)
        _finish(staged)
    return counts


def _stage(
    part: Part, method: Method, indexed: dict[str, tuple[int, int]] | None, force: bool
) -> str | tuple[Path, Path, Path]:
    """Write and check the compressed copy under a temporary name; (plain, tmp, target)."""
    if method == "none":
        return "skipped: compression is off"
    plain = part.log
    if not plain.exists():
        return "skipped: already compressed or no day file"
    if not part.manifest.exists():
        return "skipped: not sealed"
    _data, man = mf.load(part.manifest)
    if man.get("declared_silence"):
        return "skipped: declared silence"
    if not force:
        done = (indexed or {}).get(part.relative, (0, 0))[0]
        if done < int(man.get("lines") or 0):
            return "skipped: the index has not read the whole file yet"
    target = plain.with_name(plain.name + SUFFIX[method])
    # The temporary name keeps the compression suffix, so reader.open_day can check it.
    tmp = plain.with_name(plain.name + ".tmp" + SUFFIX[method])
    tmp.unlink(missing_ok=True)
    with open(plain, "rb") as src, open(tmp, "wb") as dst:
        if method == "zstd":
            cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1)
            with cctx.stream_writer(dst, closefd=False) as writer:
                shutil.copyfileobj(src, writer, CHUNK)
        else:
            with gzip.GzipFile(fileobj=dst, mode="wb", compresslevel=6, mtime=0) as gz:
                shutil.copyfileobj(src, gz, CHUNK)
    os.chmod(tmp, plain.stat().st_mode & 0o777)
    check = hashlib.sha256()
    with open_day(tmp) as fh:
        while chunk := fh.read(CHUNK):
            check.update(chunk)
    if check.hexdigest() != man.get("sha256"):
        tmp.unlink(missing_ok=True)
        raise CompressError(
            f"{plain}: the file does not match its manifest's SHA-256; not compressed "
            "(run `logmaster verify`)"
        )
    return plain, tmp, target


def _finish(staged: list[tuple[Path, Path, Path]]) -> None:
    """Rename the synced copies into place, sync the renames, then remove the plain files."""
    for _plain, tmp, target in staged:
        os.replace(tmp, target)
    sync_filesystem(staged[0][2].parent)
    for plain, _tmp, _target in staged:
        plain.unlink()
