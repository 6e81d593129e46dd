"""Reading a day file whatever its compression: ``open_day(path)``.

After sealing, ``<DD>.log`` may be replaced by ``<DD>.log.zst`` or ``<DD>.log.gz``
(:mod:`logmaster.archive.compress`). Everything that reads day files — verification, attribution
citations, the indexer — opens them here and sees the uncompressed bytes: byte offsets are always
offsets in the uncompressed file, whatever is on disk.

``path`` may name the day file as written (``28.log``, the usual case: the compressed twin is
found next to it) or the compressed file itself. The returned object is a binary file that
supports ``read``, ``readline``, iteration, ``seek`` and ``tell``; seeking backwards in a zstd
file restarts decompression from the start (citations seek forward, in order, in practice).
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import BinaryIO, cast

import zstandard

COMPRESSED_SUFFIXES = (".zst", ".gz")
READ_BUFFER = 1 << 20


def logical_path(path: Path) -> Path:
    """The day file's name as written (``28.log``), for a compressed twin too."""
    if path.suffix in COMPRESSED_SUFFIXES:
        return path.with_suffix("")
    return path


def resolve(path: Path) -> Path | None:
    """The file on disk holding day file ``path``: itself, or its .zst/.gz twin; None if none."""
    base = logical_path(path)
    for candidate in (base, *(base.with_name(base.name + s) for s in COMPRESSED_SUFFIXES)):
        if candidate.exists():
            return candidate
    return None


def open_day(path: Path) -> BinaryIO:
    """Open a day file for reading its uncompressed bytes; FileNotFoundError if none exists."""
    actual = path if path.suffix in COMPRESSED_SUFFIXES and path.exists() else resolve(path)
    if actual is None:
        raise FileNotFoundError(f"{path}: no such day file (nor a .zst or .gz of it)")
    if actual.suffix == ".zst":
        return io.BufferedReader(_ZstdRaw(actual), READ_BUFFER)
    if actual.suffix == ".gz":
        return cast(BinaryIO, gzip.open(actual, "rb"))
    return open(actual, "rb")


class _ZstdRaw(io.RawIOBase):
    """A seekable, read-only raw stream over a zstd file (backward seeks restart it)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fh: BinaryIO | None = None
        self._reader: zstandard.ZstdDecompressionReader | None = None
        self._pos = 0
        self._restart()

    def _restart(self) -> None:
        self._close_reader()
        self._fh = open(self._path, "rb")  # noqa: SIM115 - closed in close()
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            self._fh, read_size=READ_BUFFER, read_across_frames=True
        )
        self._pos = 0

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()  # type: ignore[no-untyped-call]
            self._reader = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        assert self._reader is not None
        data = self._reader.read(len(buffer))
        n = len(data)
        memoryview(buffer)[:n] = data
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._pos
        elif whence == os.SEEK_END:
            # The uncompressed size is only known by reading to the end.
            while self.readinto(bytearray(READ_BUFFER)):
                pass
            offset += self._pos
        if offset < self._pos:
            self._restart()
        assert self._reader is not None
        while self._pos < offset:
            chunk = self._reader.read(min(READ_BUFFER, offset - self._pos))
            if not chunk:
                break
            self._pos += len(chunk)
        return self._pos

    def close(self) -> None:
        self._close_reader()
        super().close()
