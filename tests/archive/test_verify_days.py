"""Verdicts per device-day, compressed day files read transparently, the verify CLI."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from archive_helpers import DAY
from seal_support import Data, make_data

from logmaster.archive.compress import Method, compress_part, compress_sealed
from logmaster.archive.reader import open_day, resolve
from logmaster.archive.verdict import verify_days
from logmaster.archive.verify import day_files, verify_day

D1 = DAY - dt.timedelta(days=3)
D2 = DAY - dt.timedelta(days=2)


@pytest.fixture
def data(tmp_path: Path) -> Data:
    return make_data(tmp_path)


@pytest.mark.parametrize("method", ["zstd", "gzip"])
def test_open_day_reads_compressed_files_with_uncompressed_offsets(
    data: Data, method: Method
) -> None:
    """read, readline, iteration, seek and tell give the same bytes as the plain file."""
    plain_path = data.write("gw1", D1, n=300)
    plain = plain_path.read_bytes()
    data.seal(D1)
    assert compress_part(data.part("gw1", D1), method, None, force=True) == "compressed"
    assert not plain_path.exists()
    actual = resolve(plain_path)
    assert actual is not None and actual.name == "25.log." + ("zst" if method == "zstd" else "gz")
    assert os.stat(actual).st_size < len(plain) / 3
    with open_day(plain_path) as fh:
        assert fh.read() == plain
    offset = plain.index(b"\n", 5000) + 1
    with open_day(plain_path) as fh:
        fh.seek(offset)
        assert fh.tell() == offset
        assert fh.readline() == plain[offset : plain.index(b"\n", offset) + 1]
        fh.seek(100)  # backwards
        assert fh.read(50) == plain[100:150]
        fh.seek(0)
        assert list(fh) == plain.splitlines(keepends=True)
    # The existing chain verification and the day listing see compressed days too.
    assert verify_day("gw1", D1, plain_path).ok
    assert [p for _d, _day, p in day_files(data.root, compressed=True)] == [plain_path]
    assert list(day_files(data.root)) == []


def test_compression_waits_for_the_index_and_checks_the_hash(data: Data) -> None:
    """Not indexed yet: left alone; indexed: compressed; a file not matching its seal: kept."""
    data.write("gw1", D1)
    data.write("gw2", D1)
    data.seal(D1)
    p1, p2 = data.part("gw1", D1), data.part("gw2", D1)
    assert compress_part(p1, "zstd", {}) == "skipped: the index has not read the whole file yet"
    counts = compress_sealed(data.root, [p1], "zstd", {p1.relative: (30, 2)})
    assert counts == {"compressed": 1}
    with open(p2.log, "ab") as fh:
        fh.write(b"x\n")
    assert compress_sealed(data.root, [p2], "gzip", None, force=True) == {"failed": 1}
    assert p2.log.exists() and resolve(p2.log) == p2.log
    with pytest.raises(FileNotFoundError):
        open_day(data.root / "nope" / "01.log")
    gz = data.root / "x.log.gz"
    gz.write_bytes(gzip.compress(b"a\n"))
    assert open_day(gz).read() == b"a\n"


def test_verdicts_ok_unsealed_pending(data: Data) -> None:
    """Each state has its verdict; ranges and devices filter."""
    from seal_support import DownTsa

    data.write("gw1", D1)
    data.write("gw1", D2)
    data.write("gw2", D1)
    data.seal(D1, "gw1")
    data.seal(D1, "gw2", stamper=DownTsa())
    found = {(v.device, v.day): v.verdict for v in verify_days(data.settings, workers=1)}
    assert found == {("gw1", D1): "OK", ("gw1", D2): "UNSEALED", ("gw2", D1): "PENDING"}
    only = verify_days(data.settings, "gw1", D2, D2, workers=1)
    assert [(v.device, v.day) for v in only] == [("gw1", D2)]
    # Two worker processes give the same verdicts.
    both = {(v.device, v.day): v.verdict for v in verify_days(data.settings, workers=2)}
    assert both == found
    body = next(v for v in verify_days(data.settings, workers=1) if v.verdict == "OK").to_json()
    assert body["day"] == D1.isoformat() and body["reasons"] == []
    json.dumps(body)


def test_verify_range_finds_the_previous_manifest_outside_it(data: Data) -> None:
    """A range that starts after the device's first day still checks the link backwards."""
    for d in (D1, D2):
        data.write("gw1", d)
        data.seal(d)
    [v] = verify_days(data.settings, "gw1", D2, D2, workers=1)
    assert v.verdict == "OK"
    data.part("gw1", D1).manifest.write_bytes(data.part("gw1", D1).manifest.read_bytes() + b" ")
    [v] = verify_days(data.settings, "gw1", D2, D2, workers=1)
    assert {r.code for r in v.reasons} == {"day_removed"}


def test_cli_exit_codes(data: Data) -> None:
    """verify exits 0 only when every day is OK; FAIL names the reason; bad input exits 2."""
    data.write("gw1", D1)
    data.seal(D1)
    base = [sys.executable, "-m", "logmaster", "verify", "--data-dir", str(data.settings.data_dir)]
    ok = subprocess.run(base, check=False, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK/TAMAM" in ok.stdout and "25.11.2026" in ok.stdout
    data.write("gw1", D2)
    unsealed = subprocess.run(base, check=False, capture_output=True, text=True)
    assert unsealed.returncode == 1 and "UNSEALED/MÜHÜRSÜZ" in unsealed.stdout
    path = data.part("gw1", D1).log
    path.write_bytes(path.read_bytes().replace(b"message 000003", b"message 000004"))
    failed = subprocess.run(
        [*base, "--to", "2026-11-25"], check=False, capture_output=True, text=True
    )
    assert failed.returncode == 1
    assert "FAIL/HATA" in failed.stdout and "line_changed: a line was changed" in failed.stdout
    bad = subprocess.run([*base, "--device", "nope"], check=False, capture_output=True, text=True)
    assert bad.returncode == 2 and "no device 'nope'" in bad.stderr


def test_unsealed_day_still_has_its_chain_checked(data: Data) -> None:
    """A day not sealed yet is UNSEALED while its chain holds, FAIL once it does not."""
    path = data.write("gw1", D2)
    [v] = verify_days(data.settings, workers=1)
    assert v.verdict == "UNSEALED" and v.lines == 30
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5] + lines[6:]))
    os.utime(path, (0, 0))
    [v] = verify_days(data.settings, workers=1)
    assert v.verdict == "FAIL" and {r.code for r in v.reasons} == {"chain"}
    assert v.reasons[0].line == 6
