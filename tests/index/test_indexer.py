"""The indexer against a real archive: exactly once across kill -9, tailing within a second."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from logmaster.archive.line import Clock, format_line
from logmaster.archive.writer import ArchiveWriter
from logmaster.index.indexer import Indexer
from logmaster.index.sqlite import SqliteIndex
from support import wait_for

SAMPLES = Path(__file__).parent.parent / "parsers" / "samples"
ZONE = ZoneInfo("Europe/Istanbul")


def sample_lines() -> list[bytes]:
    out: list[bytes] = []
    for path in sorted(SAMPLES.glob("*.txt")):
        out.extend(line for line in path.read_bytes().splitlines() if line.strip())
    return out


def write_lines(archive: Path, n: int, devices: int = 3, start: int = 0) -> None:
    """``n`` archive lines spread over ``devices`` devices, written as the collector would."""
    lines = sample_lines()
    writer = ArchiveWriter(archive, "never")
    clock = Clock(ZONE)
    now = time.time_ns()
    for i in range(start, start + n):
        sec, frac = divmod(now + i * 1000, 1_000_000_000)
        stamp = clock.stamp(sec)
        df = writer.day_file(f"dev{i % devices}", stamp.day)
        writer.add(df, format_line(stamp, frac // 1000, b"10.0.0.1", lines[i % len(lines)]))
    writer.close()


def indexed(index_dir: Path) -> tuple[int, int]:
    """(rows, distinct archive positions) over every day file of the SQLite index."""
    rows = distinct = 0
    for db in index_dir.glob("events-*.db"):
        conn = sqlite3.connect(db)
        try:
            r, d = conn.execute(
                "SELECT count(*), count(DISTINCT log_file || ':' || log_offset) FROM events"
            ).fetchone()
        except sqlite3.OperationalError:
            r = d = 0  # created, schema not committed yet
        conn.close()
        rows += r
        distinct += d
    return rows, distinct


def run_indexer(data: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "logmaster", "index", "--data-dir", str(data), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={
            **os.environ,
            "LOGMASTER_INDEX__METRICS_LISTEN": "",
            "LOGMASTER_INDEX__BATCH_LINES": "1000",
        },
    )


def test_kill_9_mid_catch_up_indexes_every_line_exactly_once(tmp_path: Path) -> None:
    """kill -9 while indexing, restart: every archive line is in the index once, none twice."""
    data = tmp_path / "data"
    total = 40_000
    write_lines(data / "archive", total)
    proc = run_indexer(data)
    wait_for(lambda: indexed(data / "index")[0] >= 5_000, timeout=120, interval=0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stderr is not None
    proc.stderr.close()
    partial, _ = indexed(data / "index")
    assert 0 < partial < total, "the kill must land mid-way for this test to mean anything"
    done = subprocess.run(
        [sys.executable, "-m", "logmaster", "index", "--once", "--data-dir", str(data)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    assert b"indexed" in done.stdout
    assert indexed(data / "index") == (total, total)


def test_follow_mode_indexes_new_lines_within_a_second(tmp_path: Path) -> None:
    """Lines appended to the archive are searchable shortly after (poll 250 ms)."""
    data = tmp_path / "data"
    write_lines(data / "archive", 100)
    proc = run_indexer(data)
    try:
        wait_for(lambda: indexed(data / "index")[0] == 100, timeout=60)
        delays = []
        for round_ in range(3):
            start = time.monotonic()
            write_lines(data / "archive", 10, start=100 + round_ * 10)
            wait_for(
                lambda r=round_: indexed(data / "index")[0] == 110 + r * 10,
                timeout=10,
                interval=0.01,
            )
            delays.append(time.monotonic() - start)
        # The poll interval is 250 ms; allow this shared 2-core machine some noise.
        assert max(delays) < 2.0, delays
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()
    assert indexed(data / "index") == (130, 130)


def test_reindex_rebuilds_a_day_from_the_archive(tmp_path: Path) -> None:
    """Dropping and re-indexing a day gives the same rows as before, each once."""
    archive = tmp_path / "archive"
    write_lines(archive, 500)
    index = SqliteIndex(tmp_path / "index")
    ix = Indexer(archive, index, None)
    assert ix.catch_up() == 500
    day = index.days()[0]
    index.drop_days(day, day)
    ix2 = Indexer(archive, index, None)
    assert ix2.catch_up() == 500
    assert indexed(tmp_path / "index") == (500, 500)
    index.close()


def test_two_indexer_processes_split_the_devices_and_index_each_line_once(
    tmp_path: Path,
) -> None:
    """index.workers = 2: each process indexes its share of the devices into its own files."""
    from logmaster.index.base import shard_of

    write_lines(tmp_path / "archive", 6000, devices=6)
    proc = run_indexer(tmp_path, "--once")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    rows, distinct = indexed(tmp_path / "index")
    assert rows == distinct == 6000
    seen: dict[int, set[str]] = {}
    for db in (tmp_path / "index").glob("events-*.db"):
        shard = int(db.name.split(".")[-2])
        conn = sqlite3.connect(db)
        seen.setdefault(shard, set()).update(
            d for (d,) in conn.execute("SELECT DISTINCT device FROM events")
        )
        conn.close()
    assert set(seen) == {0, 1}, "both shards hold devices"
    for shard, devices in seen.items():
        assert devices and all(shard_of(d, 2) == shard for d in devices)
    index = SqliteIndex(tmp_path / "index")
    assert index.shards == 2
    stats = sum(n for day in index.days() for n, _ in index.parse_stats(day).values())
    assert stats == 6000
    index.close()


def test_compressed_days_and_supplements_are_indexed(tmp_path: Path) -> None:
    """A sealed day compressed to .log.zst and its late-line supplement are both indexed;
    offsets are those of the uncompressed file."""
    import zstandard

    write_lines(tmp_path / "archive", 900, devices=1)
    (plain,) = (tmp_path / "archive" / "dev0").rglob("*.log")
    data = plain.read_bytes()
    plain.with_name(plain.name + ".zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    plain.unlink()
    late = data.splitlines(keepends=True)[:7]
    supplement = plain.with_name(plain.name.replace(".log", ".s1.log"))
    supplement.write_bytes(b"".join(late))
    index = SqliteIndex(tmp_path / "index")
    indexer = Indexer(tmp_path / "archive", index, None)
    assert indexer.catch_up() == 907
    stats = {
        Path(f).name: n for day in index.days() for f, (n, _) in index.parse_stats(day).items()
    }
    assert stats == {plain.name: 900, supplement.name: 7}
    # The citation offset of the last line of the compressed day is its offset in the plain file.
    conn = sqlite3.connect(next((tmp_path / "index").glob("events-*.db")))
    (offset,) = conn.execute(
        "SELECT max(log_offset) FROM events WHERE log_file LIKE '%' || ?", (plain.name,)
    ).fetchone()
    conn.close()
    assert offset == len(data) - len(data.splitlines(keepends=True)[-1])
    indexer.close()


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def test_indexer_processes_run_below_the_collector_and_api_priority(tmp_path: Path) -> None:
    """index.nice (default 10): searches and receiving get the CPU first, indexing what is left."""
    write_lines(tmp_path / "archive", 100, devices=2)
    proc = run_indexer(tmp_path)
    try:
        mine = os.nice(0)
        children: list[int] = []

        def niced() -> bool:
            nonlocal children
            children = [c for c in _children(proc.pid) if _nice(c) == min(19, mine + 10)]
            return len(children) == 2

        assert wait_for(niced, timeout=60), "both indexer processes run at nice +10"
        assert _nice(proc.pid) == mine  # the parent only supervises
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)  # also closes its stderr pipe
