"""Hash chain verification: an untouched day file verifies; every kind of tampering is named."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from archive_helpers import DAY, age, file_lines, lines_for, verify, write_batches

from logmaster.archive import chain
from logmaster.archive.verify import day_files, stats_day, verify_day
from logmaster.archive.writer import day_path

BATCHES = (7, 5, 9, 4)  # records end at lines 7, 12, 21, 25
TOTAL = sum(BATCHES)


@dataclass
class Day:
    root: Path
    device: str
    path: Path
    lines: list[bytes]

    @property
    def side(self) -> Path:
        return chain.sidecar_path(self.path)


def write_day(root: Path, device: str = "gw1", day: dt.date = DAY) -> Day:
    lines = lines_for(device, day, TOTAL)
    batches, pos = [], 0
    for n in BATCHES:
        batches.append(lines[pos : pos + n])
        pos += n
    path = write_batches(root, device, batches, day)
    age(path)
    age(chain.sidecar_path(path))
    return Day(root, device, path, lines)


@pytest.fixture
def day(tmp_path: Path) -> Day:
    return write_day(tmp_path / "data" / "archive")


def set_lines(path: Path, lines: list[bytes]) -> None:
    """Rewrite a day file and leave it looking old (not being written)."""
    path.write_bytes(b"".join(lines))
    age(path)


def sidecar_rows(d: Day) -> list[dict[str, object]]:
    return [json.loads(row) for row in d.side.read_bytes().splitlines()]


def set_sidecar_rows(d: Day, rows: list[dict[str, object]]) -> None:
    d.side.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows))


# -- the untouched archive ------------------------------------------------------------------


def test_untouched_day_file_verifies(day: Day) -> None:
    """Lines written in several flushes verify, with every line counted and recorded."""
    report = verify(day.root, day.device)
    assert report.ok, report.problems
    assert report.lines == TOTAL
    assert report.recorded_lines == TOTAL
    assert report.size == day.path.stat().st_size
    assert report.first_bad_line is None
    assert report.notes == []
    assert file_lines(day.path) == day.lines


def test_sidecar_has_one_record_per_flush_with_per_line_tags(day: Day) -> None:
    """Header binds device and day; each flush adds lines/size/sha256 and an 8-byte tag a line."""
    side = chain.read_sidecar(day.side)
    assert (side.device, side.day) == (day.device, DAY)
    assert side.genesis == chain.genesis(day.device, DAY)
    assert [r.lines for r in side.records] == [7, 12, 21, 25]
    head = side.genesis
    done = 0
    for record, n in zip(side.records, BATCHES, strict=True):
        tags = bytearray()
        head = chain.extend(head, day.lines[done : done + n], tags)
        done += n
        assert record.tags == bytes(tags)
        assert len(record.tags) == n * chain.TAG_BYTES
        assert record.sha256 == head
        assert record.size == len(b"".join(day.lines[:done]))
        assert not record.resync


def test_genesis_binds_device_and_day() -> None:
    """Different device or day gives a different chain start."""
    g = chain.genesis("gw1", DAY)
    assert g != chain.genesis("gw2", DAY)
    assert g != chain.genesis("gw1", DAY + dt.timedelta(days=1))
    assert len(g) == 32


# -- tampering with the day file -------------------------------------------------------------


def change_byte(n: int) -> Callable[[list[bytes]], list[bytes]]:
    def tamper(lines: list[bytes]) -> list[bytes]:
        line = bytearray(lines[n - 1])
        pos = line.index(b"message") + 1
        line[pos] ^= 0x01
        return [*lines[: n - 1], bytes(line), *lines[n:]]

    return tamper


def delete(n: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: lines[: n - 1] + lines[n:]


def insert_before(n: int) -> Callable[[list[bytes]], list[bytes]]:
    def tamper(lines: list[bytes]) -> list[bytes]:
        forged = lines[n - 1].replace(b"message", b"MESSAGE")
        return [*lines[: n - 1], forged, *lines[n - 1 :]]

    return tamper


def swap(n: int) -> Callable[[list[bytes]], list[bytes]]:
    def tamper(lines: list[bytes]) -> list[bytes]:
        out = list(lines)
        out[n - 1], out[n] = out[n], out[n - 1]
        return out

    return tamper


TAMPERS: dict[str, tuple[Callable[[list[bytes]], list[bytes]], int]] = {
    "changed byte, first line": (change_byte(1), 1),
    "changed byte, line 10": (change_byte(10), 10),
    "changed byte, record boundary line 12": (change_byte(12), 12),
    "changed byte, first line of a record": (change_byte(13), 13),
    "changed byte, last line": (change_byte(TOTAL), TOTAL),
    "deleted first line": (delete(1), 1),
    "deleted line 10": (delete(10), 10),
    "deleted record boundary line 7": (delete(7), 7),
    "deleted last line": (delete(TOTAL), TOTAL),
    "inserted line before 1": (insert_before(1), 1),
    "inserted line before 16": (insert_before(16), 16),
    "reordered lines 10 and 11": (swap(10), 10),
    "reordered lines across records 12 and 13": (swap(12), 12),
    "reordered last two lines": (swap(TOTAL - 1), TOTAL - 1),
    "truncated to 20 lines": (lambda lines: lines[:20], 21),
    "truncated to nothing": (lambda lines: [], 1),
    "truncated mid-line 21": (lambda lines: [*lines[:20], lines[20][:15]], 21),
    "appended foreign line": (lambda lines: [*lines, lines[0]], TOTAL + 1),
    "appended two foreign lines": (lambda lines: [*lines, b"forged\n", b"forged\n"], TOTAL + 1),
    "line end removed, two lines joined": (
        lambda lines: [*lines[:4], lines[4][:-1] + lines[5], *lines[6:]],
        5,
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampered_day_file_fails_and_names_the_first_bad_line(day: Day, case: str) -> None:
    """A changed, deleted, inserted, reordered, truncated or appended line is named."""
    tamper, first_bad = TAMPERS[case]
    set_lines(day.path, tamper(list(day.lines)))
    report = verify(day.root, day.device)
    assert not report.ok
    assert report.first_bad_line == first_bad, report.problems
    assert re.search(rf"\bline {first_bad}\b|after line {first_bad - 1}\b", report.problems[0])


def test_appended_line_in_a_file_being_written_is_a_note_not_a_failure(day: Day) -> None:
    """Lines after the last record of a file written in the last minute are 'being written'."""
    with open(day.path, "ab") as fh:
        fh.write(lines_for(day.device, DAY, 1, start=TOTAL)[0])
    report = verify(day.root, day.device)
    assert report.ok, report.problems
    assert report.lines == TOTAL + 1
    assert any("not yet in a chain record" in n for n in report.notes)
    # The same file once it has not been written for a while: a foreign line.
    age(day.path, 120)
    report = verify(day.root, day.device)
    assert not report.ok
    assert report.first_bad_line == TOTAL + 1


def test_torn_last_line_is_a_note(day: Day) -> None:
    """A last line without LF (a crash mid-write) is reported as torn, not as tampering."""
    with open(day.path, "ab") as fh:
        fh.write(b"2026-11-28T10:00:00.000000+03:00 10.0.0.1 half a li")
    age(day.path)
    report = verify(day.root, day.device)
    assert report.ok, report.problems
    assert report.lines == TOTAL
    assert any(f"line {TOTAL + 1} is torn" in n for n in report.notes)


# -- files swapped between devices and days ----------------------------------------------------


@pytest.fixture
def two_devices(tmp_path: Path) -> tuple[Day, Day, Day]:
    root = tmp_path / "archive"
    return (
        write_day(root, "gw1"),
        write_day(root, "gw2"),
        write_day(root, "gw1", DAY - dt.timedelta(days=1)),
    )


def test_day_file_copied_over_another_devices_file_fails(two_devices: tuple[Day, Day, Day]) -> None:
    """gw1's day file copied over gw2's: the first line no longer links to gw2's chain."""
    gw1, gw2, _ = two_devices
    shutil.copyfile(gw1.path, gw2.path)
    age(gw2.path)
    report = verify(gw2.root, "gw2")
    assert not report.ok
    assert report.first_bad_line == 1
    assert verify(gw1.root, "gw1").ok


def test_day_file_copied_over_another_days_file_fails(two_devices: tuple[Day, Day, Day]) -> None:
    """gw1's file of the day before copied over today's: the first line does not match."""
    gw1, _, yesterday = two_devices
    shutil.copyfile(yesterday.path, gw1.path)
    age(gw1.path)
    report = verify(gw1.root, "gw1")
    assert not report.ok
    assert report.first_bad_line == 1


def test_day_file_and_sidecar_moved_together_fail(two_devices: tuple[Day, Day, Day]) -> None:
    """Moving a day file with its chain file to another device or day is detected."""
    gw1, gw2, yesterday = two_devices
    shutil.copyfile(gw1.side, gw2.side)
    shutil.copyfile(gw1.path, gw2.path)
    report = verify(gw2.root, "gw2")
    assert not report.ok
    assert "moved or swapped" in report.problems[0]
    shutil.copyfile(yesterday.side, gw1.side)
    shutil.copyfile(yesterday.path, gw1.path)
    report = verify(gw1.root, "gw1")
    assert not report.ok
    assert "moved or swapped" in report.problems[0]


def test_moved_files_with_a_forged_sidecar_header_still_fail(
    two_devices: tuple[Day, Day, Day],
) -> None:
    """Relabelling the moved chain file as gw2 (even with gw2's genesis) does not make it verify."""
    gw1, gw2, _ = two_devices
    shutil.copyfile(gw1.path, gw2.path)
    rows = sidecar_rows(gw1)
    rows[0]["device"] = "gw2"
    set_sidecar_rows(gw2, rows)
    report = verify(gw2.root, "gw2")
    assert not report.ok
    assert "genesis" in report.problems[0]
    rows[0]["genesis"] = chain.genesis("gw2", DAY).hex()
    set_sidecar_rows(gw2, rows)
    report = verify(gw2.root, "gw2")
    assert not report.ok
    assert report.first_bad_line == 1


# -- tampering with the sidecar --------------------------------------------------------------


def flip_tag(rows: list[dict[str, object]], record: int, index: int) -> None:
    tags = bytearray(base64.b64decode(str(rows[record]["tags"])))
    tags[index * chain.TAG_BYTES] ^= 0xFF
    rows[record]["tags"] = base64.b64encode(bytes(tags)).decode()


def test_edited_sidecar_tag_names_its_line(day: Day) -> None:
    """A changed per-line tag in record 3 (lines 13-21) names line 15."""
    rows = sidecar_rows(day)
    flip_tag(rows, 3, 2)
    set_sidecar_rows(day, rows)
    report = verify(day.root, day.device)
    assert not report.ok
    assert report.first_bad_line == 15


@pytest.mark.parametrize(
    ("field", "value", "first_bad"),
    [
        ("sha256", "00" * 32, 12),
        ("size", 1, 12),
        ("lines", 11, 11),
    ],
)
def test_edited_sidecar_record_fields_fail(
    day: Day, field: str, value: object, first_bad: int
) -> None:
    """A record whose head, size or line count was changed does not match the file."""
    rows = sidecar_rows(day)
    rows[2][field] = value  # the record ending at line 12
    set_sidecar_rows(day, rows)
    report = verify(day.root, day.device)
    assert not report.ok
    assert report.first_bad_line == first_bad


def test_dropped_last_sidecar_record_fails(day: Day) -> None:
    """Removing the last record leaves its lines in no record: named as appended."""
    rows = sidecar_rows(day)
    set_sidecar_rows(day, rows[:-1])
    report = verify(day.root, day.device)
    assert not report.ok
    assert report.first_bad_line == 22


def test_sidecar_record_marked_resync_fails(day: Day) -> None:
    """A resync record (the chain restarted) is always a problem to report."""
    rows = sidecar_rows(day)
    rows[2]["resync"] = True
    set_sidecar_rows(day, rows)
    report = verify(day.root, day.device)
    assert not report.ok
    assert "chain restarted" in report.problems[0]


def test_missing_sidecar_fails(day: Day) -> None:
    """A day file without its chain file cannot be verified: a failure, not a pass."""
    day.side.unlink()
    report = verify(day.root, day.device)
    assert not report.ok
    assert "no chain file" in report.problems[0]


@pytest.mark.parametrize("content", [b"", b"not json\n", b'{"v": 1}\n'])
def test_unreadable_sidecar_fails(day: Day, content: bytes) -> None:
    """An empty or garbled chain header is a failure."""
    day.side.write_bytes(content)
    report = verify(day.root, day.device)
    assert not report.ok


# -- day_files and stats ---------------------------------------------------------------------


def test_day_files_lists_only_day_files(two_devices: tuple[Day, Day, Day]) -> None:
    """day_files yields (device, day, path) in order, filtered, and ignores other files."""
    gw1 = two_devices[0]
    root = gw1.root
    (root / "gw1" / "2026" / "11" / "notes.txt").write_text("x")
    (root / "gw1" / "2026" / "13").mkdir()
    (root / "gw1" / "2026" / "13" / "01.log").write_text("x")  # no such month
    (root / "stray.log").write_text("x")
    yesterday = DAY - dt.timedelta(days=1)
    assert [(d, day) for d, day, _ in day_files(root)] == [
        ("gw1", yesterday),
        ("gw1", DAY),
        ("gw2", DAY),
    ]
    assert [(d, day) for d, day, _ in day_files(root, "gw2")] == [("gw2", DAY)]
    assert [(d, day) for d, day, _ in day_files(root, day=DAY)] == [("gw1", DAY), ("gw2", DAY)]
    assert list(day_files(root / "missing")) == []


def test_stats_day_reads_the_sidecar(day: Day) -> None:
    """stats_day reports lines and bytes from the last record, and the chain state."""
    st = stats_day(day.device, DAY, day.path)
    assert (st.lines, st.size, st.state) == (TOTAL, day.path.stat().st_size, "chained")
    with open(day.path, "ab") as fh:
        fh.write(b"x\n")
    assert stats_day(day.device, DAY, day.path).state == "open (+2 bytes unrecorded)"
    day.side.unlink()
    assert stats_day(day.device, DAY, day.path).state == "no chain"


# -- the real command line ------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGMASTER_")}
    return subprocess.run(
        [sys.executable, "-m", "logmaster", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, Day, Day]:
    data = tmp_path / "data"
    return data, write_day(data / "archive", "gw1"), write_day(data / "archive", "gw2")


def test_cli_verify_clean_archive_exits_0(data_dir: tuple[Path, Day, Day]) -> None:
    """`logmaster archive verify` on an untouched archive: exit 0, every file OK."""
    data, _, _ = data_dir
    res = run_cli("archive", "verify", "--data-dir", str(data))
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(rf"OK\s+gw1\s+{DAY}\s+{TOTAL} lines", res.stdout)
    assert re.search(rf"OK\s+gw2\s+{DAY}\s+{TOTAL} lines", res.stdout)
    assert "2 day files checked, 0 failed" in res.stdout


def test_cli_verify_tampered_archive_exits_1_naming_the_line(
    data_dir: tuple[Path, Day, Day],
) -> None:
    """`logmaster archive verify` on a changed line: exit 1, FAIL with that line number."""
    data, gw1, _ = data_dir
    set_lines(gw1.path, change_byte(10)(list(gw1.lines)))
    res = run_cli("archive", "verify", "--data-dir", str(data))
    assert res.returncode == 1, res.stdout + res.stderr
    assert re.search(r"FAIL\s+gw1", res.stdout)
    assert re.search(r"line\s+10\s+does\s+not\s+match", res.stdout)
    assert re.search(rf"OK\s+gw2\s+{DAY}", res.stdout)
    assert "2 day files checked, 1 failed" in res.stdout
    # Only the clean device: exit 0 again.
    res = run_cli("archive", "verify", "--data-dir", str(data), "--device", "gw2")
    assert res.returncode == 0, res.stdout + res.stderr


def test_cli_verify_without_matching_files_exits_2(data_dir: tuple[Path, Day, Day]) -> None:
    """No day file matches: exit 2 with a one-sentence error, and a bad --date too."""
    data, _, _ = data_dir
    res = run_cli("archive", "verify", "--data-dir", str(data), "--device", "nope")
    assert res.returncode == 2
    assert "no day files match" in res.stderr
    res = run_cli("archive", "verify", "--data-dir", str(data), "--date", "28.11.2026")
    assert res.returncode == 2
    assert "YYYY-MM-DD" in res.stderr


def test_cli_stats_prints_lines_and_bytes(data_dir: tuple[Path, Day, Day]) -> None:
    """`logmaster archive stats` shows each device-day with its line and byte counts."""
    data, gw1, gw2 = data_dir
    res = run_cli("archive", "stats", "--data-dir", str(data))
    assert res.returncode == 0, res.stdout + res.stderr
    for d in (gw1, gw2):
        size = f"{d.path.stat().st_size:,}"
        assert re.search(
            rf"{d.device}\s*│\s*28\.11\.2026\s*│\s*{TOTAL}\s*│\s*{size}\s*│\s*chained", res.stdout
        ), res.stdout


def test_verify_day_directly_on_paths(day: Day) -> None:
    """verify_day works on an explicit (device, day, path) and on day_path()."""
    assert day_path(day.root, day.device, DAY) == day.path
    assert verify_day(day.device, DAY, day.path).ok
    assert not verify_day("other", DAY, day.path).ok
