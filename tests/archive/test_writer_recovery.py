"""ArchiveWriter: exact appends, crash recovery on reopen, fsync modes, many files."""

from __future__ import annotations

import datetime as dt
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from archive_helpers import DAY, age, file_lines, lines_for, messages, verify, write_batches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logmaster.archive import chain, writer
from logmaster.archive.line import Clock, format_line
from logmaster.archive.writer import ArchiveWriter, day_path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "archive"


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def records(path: Path) -> list[chain.Record]:
    return chain.read_sidecar(chain.sidecar_path(path)).records


# -- exact appends --------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raws=st.lists(st.lists(st.binary(max_size=120), max_size=15), min_size=1, max_size=5),
)
def test_property_lines_written_are_exactly_the_lines_given(
    tmp_path: Path, raws: list[list[bytes]]
) -> None:
    """Any messages, any flush grouping: the day file is the lines in order, each once."""
    root = tmp_path / f"a{os.urandom(6).hex()}"
    clock = Clock(lines_zone())
    second = int(dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC).timestamp())
    batches = [
        [format_line(clock.stamp(second), i, b"10.0.0.1", raw) for i, raw in enumerate(batch)]
        for batch in raws
    ]
    path = write_batches(root, "gw1", batches)
    every = [line for batch in batches for line in batch]
    if not every:
        assert not path.exists() or path.read_bytes() == b""
        return
    assert path.read_bytes() == b"".join(every)
    assert messages(path) == [raw for batch in raws for raw in batch]
    assert verify(root, "gw1").ok


def lines_zone() -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Istanbul")


def test_writer_stats_count_lines_and_bytes(root: Path) -> None:
    """stats.lines/bytes count what was written; pending_bytes returns to zero."""
    w = ArchiveWriter(root, fsync="never")
    lines = lines_for("gw1", n=12)
    df = w.day_file("gw1", DAY)
    for line in lines:
        w.add(df, line)
    assert w.pending_bytes == sum(map(len, lines))
    assert w.flush()
    assert (w.stats.lines, w.stats.bytes) == (12, sum(map(len, lines)))
    assert w.pending_bytes == 0
    assert w.flush()  # nothing to do
    assert w.stats.lines == 12
    w.close()
    assert records(day_path(root, "gw1", DAY))[-1].lines == 12


def test_day_file_layout_and_modes(root: Path) -> None:
    """<root>/<device>/<YYYY>/<MM>/<DD>.log and .log.chain, files 0640, folders 0750."""
    old = os.umask(0o022)
    try:
        path = write_batches(root, "gw1", [lines_for("gw1", n=2)])
    finally:
        os.umask(old)
    assert path == root / "gw1" / "2026" / "11" / "28.log"
    assert chain.sidecar_path(path) == root / "gw1" / "2026" / "11" / "28.log.chain"
    assert path.stat().st_mode & 0o777 == 0o640
    assert chain.sidecar_path(path).stat().st_mode & 0o777 == 0o640
    for folder in (root, root / "gw1", root / "gw1" / "2026", path.parent):
        assert folder.stat().st_mode & 0o777 == 0o750, folder


def test_same_day_file_object_for_a_device_day(root: Path) -> None:
    """day_file returns one DayFile per (device, day)."""
    w = ArchiveWriter(root)
    assert w.day_file("gw1", DAY) is w.day_file("gw1", DAY)
    assert w.day_file("gw1", DAY) is not w.day_file("gw1", DAY + dt.timedelta(days=1))
    assert w.day_file("gw1", DAY) is not w.day_file("gw2", DAY)
    w.close()


# -- crash recovery ------------------------------------------------------------------------


def test_torn_last_line_is_cut_and_the_chain_resumes(root: Path) -> None:
    """Half a line left by a crash is cut on reopen; new lines follow the last whole line."""
    first = lines_for("gw1", n=10)
    path = write_batches(root, "gw1", [first[:6], first[6:]])
    torn = lines_for("gw1", n=1, start=500)[0][:25]
    append(path, torn)
    more = lines_for("gw1", n=5, start=10)
    w = ArchiveWriter(root, fsync="never")
    df = w.day_file("gw1", DAY)
    for line in more:
        w.add(df, line)
    assert w.flush()
    w.close()
    assert w.stats.torn_bytes_cut == len(torn)
    assert w.stats.resyncs == 0
    assert file_lines(path) == first + more
    report = verify(root, "gw1")
    assert report.ok, report.problems
    assert report.notes == []
    assert [r.lines for r in records(path)] == [6, 10, 15]


def test_lines_written_after_the_last_record_are_chained_on_reopen(root: Path) -> None:
    """A crash between the data write and its record: the lines are recorded at reopen."""
    first = lines_for("gw1", n=8)
    path = write_batches(root, "gw1", [first])
    unrecorded = lines_for("gw1", n=3, start=8)
    torn = b"2026-11-28T00:00:11.000000+03:00 10.0"
    append(path, b"".join(unrecorded) + torn)
    age(path)
    # Before recovery: the unrecorded lines of an old file are foreign to verify.
    assert verify(root, "gw1").first_bad_line == 9
    more = lines_for("gw1", n=2, start=11)
    w = ArchiveWriter(root, fsync="never")
    df = w.day_file("gw1", DAY)
    for line in more:
        w.add(df, line)
    assert w.flush()
    w.close()
    assert w.stats.torn_bytes_cut == len(torn)
    assert file_lines(path) == first + unrecorded + more
    assert [r.lines for r in records(path)] == [8, 11, 13]
    age(path)
    report = verify(root, "gw1")
    assert report.ok, report.problems
    assert report.notes == []


def test_torn_last_sidecar_record_is_repaired(root: Path) -> None:
    """Half a JSON record at the end of the sidecar is dropped and its lines re-chained."""
    first = lines_for("gw1", n=10)
    path = write_batches(root, "gw1", [first[:4], first[4:]])
    side = chain.sidecar_path(path)
    data = side.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    side.write_bytes(data[: last_start + 30])  # the last record torn after 30 bytes
    report = verify(root, "gw1")
    assert report.ok, report.problems  # the file was just written: being written
    assert any("torn" in n for n in report.notes)
    assert chain.read_sidecar(side).torn_tail == 30

    more = lines_for("gw1", n=3, start=10)
    w = ArchiveWriter(root, fsync="never")
    df = w.day_file("gw1", DAY)
    for line in more:
        w.add(df, line)
    assert w.flush()
    w.close()
    sidecar = chain.read_sidecar(side)
    assert sidecar.torn_tail == 0
    assert side.read_bytes().endswith(b"\n")
    assert [r.lines for r in sidecar.records] == [4, 10, 13]
    assert not any(r.resync for r in sidecar.records)
    age(path)
    report = verify(root, "gw1")
    assert report.ok, report.problems
    assert report.notes == []
    assert file_lines(path) == first + more


def test_sidecar_without_final_newline_is_repaired(root: Path) -> None:
    """A complete last record missing only its LF gets the LF back before the next record."""
    first = lines_for("gw1", n=4)
    path = write_batches(root, "gw1", [first])
    side = chain.sidecar_path(path)
    side.write_bytes(side.read_bytes()[:-1])
    write_batches(root, "gw1", [lines_for("gw1", n=2, start=4)])
    assert [r.lines for r in records(path)] == [4, 6]
    assert verify(root, "gw1").ok


def test_missing_sidecar_is_recomputed_as_a_resync(root: Path) -> None:
    """Data without its chain file: the chain is recomputed from line 1 and marked resync."""
    first = lines_for("gw1", n=9)
    path = write_batches(root, "gw1", [first[:5], first[5:]])
    original = records(path)
    chain.sidecar_path(path).unlink()
    more = lines_for("gw1", n=2, start=9)
    w = ArchiveWriter(root, fsync="never")
    df = w.day_file("gw1", DAY)
    for line in more:
        w.add(df, line)
    assert w.flush()
    w.close()
    assert w.stats.resyncs == 1
    recs = records(path)
    assert [(r.lines, r.resync) for r in recs] == [(9, True), (11, False)]
    # The recomputed chain is the same chain: same head and the same per-line tags.
    assert recs[0].sha256 == original[-1].sha256
    assert recs[0].tags == original[0].tags + original[1].tags
    assert file_lines(path) == first + more
    report = verify(root, "gw1")
    assert not report.ok  # never silently: the restart is reported
    assert len(report.problems) == 1
    assert "chain restarted" in report.problems[0]
    assert report.first_bad_line is None
    assert report.lines == report.recorded_lines == 11


def test_unreadable_sidecar_is_kept_aside_and_recomputed(root: Path) -> None:
    """A garbled chain file is renamed *.bad-<time>, not deleted, and the chain recomputed."""
    first = lines_for("gw1", n=5)
    path = write_batches(root, "gw1", [first])
    side = chain.sidecar_path(path)
    side.write_bytes(b"garbage\n")
    write_batches(root, "gw1", [lines_for("gw1", n=1, start=5)])
    bad = list(side.parent.glob("28.log.chain.bad-*"))
    assert len(bad) == 1
    assert bad[0].read_bytes() == b"garbage\n"
    assert [(r.lines, r.resync) for r in records(path)] == [(5, True), (6, False)]
    report = verify(root, "gw1")
    assert report.problems and "chain restarted" in report.problems[0]


def test_file_shorter_than_the_sidecar_says_is_resynced_and_reported(root: Path) -> None:
    """Lost data: the writer recomputes the chain with a resync record; verify reports it."""
    first = lines_for("gw1", n=20)
    path = write_batches(root, "gw1", [first[:10], first[10:]])
    kept = first[:12]
    path.write_bytes(b"".join(kept))
    more = lines_for("gw1", n=4, start=20)
    w = ArchiveWriter(root, fsync="never")
    df = w.day_file("gw1", DAY)
    for line in more:
        w.add(df, line)
    assert w.flush()
    w.close()
    assert w.stats.resyncs == 1
    assert file_lines(path) == kept + more
    recs = records(path)
    assert [(r.lines, r.resync) for r in recs] == [
        (10, False),
        (20, False),
        (12, True),
        (16, False),
    ]
    report = verify(root, "gw1")
    assert not report.ok
    assert any("chain restarted" in p for p in report.problems)
    # The restarted chain itself matches the file line by line.
    assert report.first_bad_line is None
    assert report.lines == 16


def test_file_truncated_mid_line_below_the_sidecar_is_resynced(root: Path) -> None:
    """Shorter than recorded and torn: the torn part is cut and the chain restarted."""
    first = lines_for("gw1", n=6)
    path = write_batches(root, "gw1", [first])
    path.write_bytes(b"".join(first[:3]) + first[3][:10])
    write_batches(root, "gw1", [lines_for("gw1", n=1, start=6)])
    assert file_lines(path) == [*first[:3], lines_for("gw1", n=1, start=6)[0]]
    assert records(path)[-2].resync


def test_reopen_without_new_lines_changes_nothing(root: Path) -> None:
    """A clean file opened again (a restart) gets no extra record and no cut."""
    path = write_batches(root, "gw1", [lines_for("gw1", n=5)])
    side_before = chain.sidecar_path(path).read_bytes()
    data_before = path.read_bytes()
    w = ArchiveWriter(root)
    w.day_file("gw1", DAY).open()
    w.close()
    assert chain.sidecar_path(path).read_bytes() == side_before
    assert path.read_bytes() == data_before
    assert w.stats.torn_bytes_cut == w.stats.resyncs == 0


# -- fsync modes ---------------------------------------------------------------------------


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []
    real_fdatasync, real_syncfs = os.fdatasync, writer.syncfs

    def spy_fdatasync(fd: int) -> None:
        calls.append("fdatasync")
        real_fdatasync(fd)

    def spy_syncfs(fd: int) -> None:
        calls.append("syncfs")
        real_syncfs(fd)

    monkeypatch.setattr(writer.os, "fdatasync", spy_fdatasync)
    monkeypatch.setattr(writer, "syncfs", spy_syncfs)
    yield calls


@pytest.mark.parametrize(
    ("mode", "per_flush"),
    [("never", []), ("interval", ["syncfs"]), ("message", ["fdatasync", "fdatasync"])],
)
def test_fsync_modes(root: Path, syncs: list[str], mode: str, per_flush: list[str]) -> None:
    """'never' never syncs; 'interval' one syncfs per flush; 'message' file and sidecar each."""
    w = ArchiveWriter(root, fsync=mode)
    for batch in range(3):
        df = w.day_file("gw1", DAY)
        for line in lines_for("gw1", n=4, start=batch * 4):
            w.add(df, line)
        assert w.flush()
        assert syncs == per_flush * (batch + 1)
    w.close()
    assert verify(root, "gw1").ok
    assert len(file_lines(day_path(root, "gw1", DAY))) == 12


# -- failures during a write ------------------------------------------------------------------


class FailingWrites:
    """os.write that writes part of the data to the chosen file, then raises ENOSPC."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, suffix: str, partial: int) -> None:
        self.suffix = suffix
        self.partial = partial
        self.failures = 0
        self.real = os.write
        monkeypatch.setattr(writer.os, "write", self)

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.endswith(self.suffix):
            self.failures += 1
            if self.partial and len(data) > self.partial:
                self.real(fd, bytes(data[: self.partial]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real(fd, data)


def test_failed_data_write_is_cut_back_and_retried(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write failing halfway leaves whole lines only; the lines are written once on retry."""
    first = lines_for("gw1", n=5)
    path = write_batches(root, "gw1", [first])
    w = ArchiveWriter(root, fsync="never")
    df = w.day_file("gw1", DAY)
    more = lines_for("gw1", n=6, start=5)
    for line in more:
        w.add(df, line)
    failing = FailingWrites(monkeypatch, ".log", partial=70)
    assert not w.flush()
    assert not w.flush()
    assert failing.failures == 2
    assert w.stats.write_errors == {"ENOSPC": 2}
    assert path.read_bytes() == b"".join(first)
    assert df.pending == more
    assert w.pending_bytes == sum(map(len, more))
    assert w.failing
    monkeypatch.undo()
    assert w.flush()
    assert not w.failing
    assert w.pending_bytes == 0
    w.close()
    assert file_lines(path) == first + more
    assert verify(root, "gw1").ok


def test_failed_sidecar_write_is_cut_back_and_retried(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines written but their record failing: the record is retried, no line is written twice."""
    first = lines_for("gw1", n=3)
    path = write_batches(root, "gw1", [first])
    side_before = chain.sidecar_path(path).read_bytes()
    w = ArchiveWriter(root, fsync="never")
    df = w.day_file("gw1", DAY)
    more = lines_for("gw1", n=4, start=3)
    for line in more:
        w.add(df, line)
    FailingWrites(monkeypatch, ".chain", partial=20)
    assert not w.flush()
    assert w.stats.write_errors == {"ENOSPC": 1}
    assert chain.sidecar_path(path).read_bytes() == side_before  # the torn record was cut
    assert file_lines(path) == first + more
    monkeypatch.undo()
    assert w.flush()
    # Every byte handed to add() has left the buffer once the record is written.
    assert w.pending_bytes == 0
    w.close()
    assert file_lines(path) == first + more
    assert [r.lines for r in records(path)] == [3, 7]
    assert verify(root, "gw1").ok


def test_one_failing_device_does_not_hold_back_the_others(root: Path) -> None:
    """A device whose folder cannot be created keeps its lines; other devices are written."""
    (root).mkdir(parents=True)
    (root / "broken").write_bytes(b"a regular file where the device folder should be")
    w = ArchiveWriter(root, fsync="never")
    ok_lines = lines_for("good", n=3)
    bad_lines = lines_for("broken", n=2)
    good, broken = w.day_file("good", DAY), w.day_file("broken", DAY)
    for line in ok_lines:
        w.add(good, line)
    for line in bad_lines:
        w.add(broken, line)
    assert not w.flush()
    assert sum(w.stats.write_errors.values()) == 1
    assert set(w.stats.write_errors) <= {"ENOTDIR", "EEXIST"}
    assert file_lines(day_path(root, "good", DAY)) == ok_lines
    assert broken.pending == bad_lines
    assert w.pending_bytes == sum(map(len, bad_lines))


# -- many files ----------------------------------------------------------------------------


def test_many_devices_with_few_open_files_keep_one_chain_each(root: Path) -> None:
    """100 devices through 16 open files: files are closed and reopened, chains continue."""
    w = ArchiveWriter(root, fsync="never", max_open_files=16)
    devices = [f"dev{i:03d}" for i in range(100)]
    rounds = 4
    for r in range(rounds):
        for dev in devices:
            df = w.day_file(dev, DAY)
            for line in lines_for(dev, n=3, start=3 * r):
                w.add(df, line)
        assert w.flush()
        assert w.open_files <= 16
        assert len(w.files) <= 16
    w.close()
    assert w.stats.resyncs == 0
    assert w.stats.torn_bytes_cut == 0
    for dev in devices:
        path = day_path(root, dev, DAY)
        assert file_lines(path) == lines_for(dev, n=3 * rounds)
        recs = records(path)
        assert [r.lines for r in recs] == [3, 6, 9, 12]
        assert not any(r.resync for r in recs)
        assert chain.sidecar_path(path).read_bytes().count(b'"genesis"') == 1
        age(path)
        report = verify(root, dev)
        assert report.ok, (dev, report.problems)
        assert report.notes == []


def test_idle_files_are_closed_and_reopened_on_the_same_chain(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files idle past IDLE_CLOSE_S are closed (retired); the next lines reopen the chain."""
    monkeypatch.setattr(writer, "IDLE_CLOSE_S", 0.0)
    w = ArchiveWriter(root, fsync="never")
    df = w.day_file("gw1", DAY)
    first = lines_for("gw1", n=3)
    for line in first:
        w.add(df, line)
    assert w.flush()
    assert df.retired
    assert w.open_files == 0
    df2 = w.day_file("gw1", DAY)
    assert df2 is not df
    more = lines_for("gw1", n=3, start=3)
    for line in more:
        w.add(df2, line)
    assert w.flush()
    w.close()
    path = day_path(root, "gw1", DAY)
    assert file_lines(path) == first + more
    assert [r.lines for r in records(path)] == [3, 6]
    assert verify(root, "gw1").ok


def test_lines_of_two_days_go_to_two_files(root: Path) -> None:
    """A device writing across midnight has one chain per day file."""
    w = ArchiveWriter(root, fsync="never")
    tomorrow = DAY + dt.timedelta(days=1)
    for day in (DAY, tomorrow):
        df = w.day_file("gw1", day)
        for line in lines_for("gw1", day, n=2):
            w.add(df, line)
    assert w.flush()
    w.close()
    for day in (DAY, tomorrow):
        assert file_lines(day_path(root, "gw1", day)) == lines_for("gw1", day, n=2)
        assert verify(root, "gw1", day).ok
