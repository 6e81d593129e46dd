"""A full disk and an unwritable archive folder: lines stay pending, nothing is torn or lost."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from archive_helpers import DAY, file_lines, lines_for, verify

from logmaster.archive import chain
from logmaster.archive.writer import ArchiveWriter, DayFile, day_path


class Tmpfs:
    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, size: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,size={size}", str(self.path)],
            check=True,
            capture_output=True,
        )


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Tmpfs]:
    """A 256 KiB tmpfs, unmounted at the end; skipped only if mounting is not permitted."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command to create a small tmpfs")
    if res.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {res.stderr.strip()}")
    try:
        yield Tmpfs(mnt)
    finally:
        done = subprocess.run(["umount", str(mnt)], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def add_all(w: ArchiveWriter, df: DayFile, lines: list[bytes]) -> None:
    for line in lines:
        w.add(df, line)


def test_disk_full_keeps_lines_pending_and_writes_them_once_after(tmpfs: Tmpfs) -> None:
    """ENOSPC: flush() is False, counted, the file ends with a whole line, nothing is lost."""
    root = tmpfs.path / "archive"
    w = ArchiveWriter(root, fsync="interval")
    given: list[bytes] = []
    full = False
    for batch in range(200):
        lines = lines_for("gw1", n=40, start=40 * batch, size=180)
        given += lines
        add_all(w, w.day_file("gw1", DAY), lines)
        if not w.flush():
            full = True
            break
    assert full, "the 256 KiB tmpfs never filled up"
    assert w.stats.write_errors.get("ENOSPC", 0) >= 1
    assert w.failing
    path = day_path(root, "gw1", DAY)
    df = w.day_file("gw1", DAY)

    def check_whole_and_kept() -> None:
        data = path.read_bytes()
        assert data.endswith(b"\n"), "a half line was left in the day file"
        written = file_lines(path)
        assert written == given[: len(written)]
        # Every line given is either in the file or still pending, in order, once.
        assert written + df.pending == given
        side = chain.sidecar_path(path).read_bytes()
        assert side.endswith(b"\n"), "a half record was left in the chain file"
        assert w.pending_bytes >= sum(map(len, df.pending))

    check_whole_and_kept()
    errors = w.stats.write_errors["ENOSPC"]

    # Still full: more lines (also of a device never written before) stay pending.
    more = lines_for("gw1", n=30, start=40 * 200, size=180)
    given += more
    add_all(w, df, more)
    newcomer = lines_for("gw2", n=5)
    gw2 = w.day_file("gw2", DAY)
    add_all(w, gw2, newcomer)
    assert not w.flush()
    assert not w.flush()
    assert w.stats.write_errors["ENOSPC"] > errors
    check_whole_and_kept()
    assert gw2.pending == newcomer

    tmpfs.resize("4m")
    assert w.flush()
    assert not w.failing
    assert w.pending_bytes == 0
    assert df.pending == []
    w.close()

    assert file_lines(path) == given
    assert file_lines(day_path(root, "gw2", DAY)) == newcomer
    for device in ("gw1", "gw2"):
        report = verify(root, device)
        assert report.ok, (device, report.problems)
        assert report.lines == report.recorded_lines
        sidecar = chain.read_sidecar(chain.sidecar_path(day_path(root, device, DAY)))
        assert not any(r.resync for r in sidecar.records)
    assert w.stats.resyncs == 0


def test_disk_full_then_restart_recovers_from_what_is_on_disk(tmpfs: Tmpfs) -> None:
    """A writer stopped while the disk is full leaves a day file a new writer resumes cleanly."""
    root = tmpfs.path / "archive"
    w = ArchiveWriter(root, fsync="interval")
    written_before: list[bytes] = []
    for batch in range(200):
        lines = lines_for("gw1", n=40, start=40 * batch, size=180)
        add_all(w, w.day_file("gw1", DAY), lines)
        if not w.flush():
            break
        written_before += lines
    # The process dies here with lines pending (they are the senders' to resend).
    for df in list(w.files.values()):
        df.close()
    tmpfs.resize("4m")
    path = day_path(root, "gw1", DAY)
    on_disk = file_lines(path)
    assert on_disk[: len(written_before)] == written_before
    w2 = ArchiveWriter(root, fsync="interval")
    after = lines_for("gw1", n=10, start=100_000, size=180)
    add_all(w2, w2.day_file("gw1", DAY), after)
    assert w2.flush()
    w2.close()
    assert w2.stats.resyncs == 0
    assert file_lines(path) == on_disk + after
    report = verify(root, "gw1")
    assert report.ok, report.problems
    assert report.lines == report.recorded_lines


def fill(path: Path) -> None:
    """Write ``path`` until the file system has no byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"f" * chunk)
    finally:
        os.close(fd)


def test_new_day_file_on_a_full_disk_starts_cleanly_later(tmpfs: Tmpfs) -> None:
    """A device-day first written while the disk is full: no junk chain files, no resync."""
    root = tmpfs.path / "archive"
    w = ArchiveWriter(root, fsync="interval")
    fill(tmpfs.path / "filler")
    lines = lines_for("gw1", n=5)
    df = w.day_file("gw1", DAY)
    add_all(w, df, lines)
    for _ in range(3):
        assert not w.flush()
        time.sleep(0.4)  # retries in different seconds
    assert w.stats.write_errors["ENOSPC"] == 3
    assert df.pending == lines
    (tmpfs.path / "filler").unlink()
    assert w.flush()
    w.close()
    folder = day_path(root, "gw1", DAY).parent
    assert sorted(p.name for p in folder.iterdir()) == ["28.log", "28.log.chain"]
    assert file_lines(day_path(root, "gw1", DAY)) == lines
    assert w.stats.resyncs == 0
    report = verify(root, "gw1")
    assert report.ok, report.problems


def test_unwritable_device_folder_keeps_lines_pending(tmp_path: Path) -> None:
    """The device folder path is a regular file: mkdir fails, counted, lines kept and retried."""
    root = tmp_path / "archive"
    w = ArchiveWriter(root, fsync="never")
    blocker = root / "gw1"
    blocker.write_bytes(b"not a folder")
    lines = lines_for("gw1", n=7)
    df = w.day_file("gw1", DAY)
    add_all(w, df, lines)
    assert not w.flush()
    assert not w.flush()
    assert sum(w.stats.write_errors.values()) == 2
    assert set(w.stats.write_errors) <= {"EEXIST", "ENOTDIR"}
    assert df.pending == lines
    assert w.pending_bytes == sum(map(len, lines))
    assert blocker.read_bytes() == b"not a folder"

    blocker.unlink()
    assert w.flush()
    assert w.pending_bytes == 0
    w.close()
    assert file_lines(day_path(root, "gw1", DAY)) == lines
    assert verify(root, "gw1").ok


def test_unwritable_month_folder_keeps_lines_pending(tmp_path: Path) -> None:
    """A regular file deeper in the path (the year folder) fails the same way."""
    root = tmp_path / "archive"
    (root / "gw1").mkdir(parents=True)
    (root / "gw1" / "2026").write_bytes(b"")
    w = ArchiveWriter(root, fsync="never")
    df = w.day_file("gw1", DAY)
    add_all(w, df, lines_for("gw1", n=2))
    assert not w.flush()
    assert w.stats.write_errors
    assert len(df.pending) == 2
    w.close()
