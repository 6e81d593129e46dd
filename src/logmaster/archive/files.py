"""Small atomic-file helpers shared by sealing (``seal.py``) and the stamp queue (``stamps.py``).

Kept apart from both so that ``seal.py`` can import the queue and the queue can write files
without importing ``seal.py`` back. Two ways to replace a file:

- :func:`write_atomic`: temporary file, fsync, rename — one file, durable on its own;
- :func:`write_tmp` + :func:`sync_filesystem` + ``os.replace(tmp_path(p), p)``: many files
  with one ``syncfs(2)`` before and one after all the renames (``SealRun._commit``).
"""

from __future__ import annotations

import os
from pathlib import Path

from logmaster.archive.writer import syncfs


def tmp_path(path: Path) -> Path:
    """The temporary file that :func:`write_tmp` writes for ``path``."""
    return path.with_name(path.name + ".tmp")


def write_tmp(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Write ``data`` to ``tmp_path(path)`` (not synced, not renamed: the caller does both)."""
    fd = os.open(tmp_path(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def sync_filesystem(root: Path) -> None:
    """syncfs(2) the file system holding ``root``."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        syncfs(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Replace ``path`` with ``data``: a temporary file, fsynced, then renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
