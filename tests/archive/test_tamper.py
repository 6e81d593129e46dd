"""The tamper suite: every kind of tampering with a sealed day is detected and named."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from archive_helpers import DAY, age
from seal_support import Data, make_data

from logmaster.archive.keys import KeyStore
from logmaster.archive.manifest import dumps, load
from logmaster.archive.tsa_server import BuiltinTsa
from logmaster.archive.verdict import DayVerdict, verify_days

# Days in the past: a stamp made now must be later than their last line.
D = DAY - dt.timedelta(days=2)
BEFORE = D - dt.timedelta(days=1)
AFTER = D + dt.timedelta(days=1)


@pytest.fixture
def data(tmp_path: Path) -> Data:
    data = make_data(tmp_path)
    for day in (BEFORE, D, AFTER):
        data.write("gw1", day, n=50)
        data.seal(day)
    data.write("gw2", D, n=20)
    data.seal(D)
    assert {v.verdict for v in verify_days(data.settings, workers=1)} == {"OK"}
    return data


def verdicts(data: Data) -> dict[tuple[str, dt.date], DayVerdict]:
    return {(v.device, v.day): v for v in verify_days(data.settings, workers=1)}


def codes(v: DayVerdict) -> set[str]:
    return {r.code for r in v.reasons}


def edit_lines(data: Data, change: Callable[[list[bytes]], list[bytes]]) -> None:
    path = data.part("gw1", D).log
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(change(lines)))
    age(path)


def test_changed_byte(data: Data) -> None:
    """One changed byte: line_changed at that line; hash, root and chain disagree."""
    path = data.part("gw1", D).log
    content = bytearray(path.read_bytes())
    lines = content.split(b"\n")
    offset = sum(len(x) + 1 for x in lines[:16]) + 50  # inside line 17
    content[offset] ^= 0x01
    path.write_bytes(bytes(content))
    v = verdicts(data)[("gw1", D)]
    assert v.verdict == "FAIL"
    assert {"line_changed", "merkle_root", "chain"} <= codes(v)
    changed = next(r for r in v.reasons if r.code == "line_changed")
    assert changed.line == 17
    others = verdicts(data)
    assert others[("gw2", D)].verdict == "OK" and others[("gw1", BEFORE)].verdict == "OK"


def test_deleted_line(data: Data) -> None:
    """A deleted line is named with the line where the file starts to differ."""
    edit_lines(data, lambda ls: ls[:9] + ls[10:])
    v = verdicts(data)[("gw1", D)]
    assert "line_deleted" in codes(v)
    assert next(r for r in v.reasons if r.code == "line_deleted").line == 10


def test_inserted_line(data: Data) -> None:
    """An inserted line is named at its position."""
    edit_lines(data, lambda ls: [*ls[:20], ls[3], *ls[20:]])
    v = verdicts(data)[("gw1", D)]
    assert "line_inserted" in codes(v)
    assert next(r for r in v.reasons if r.code == "line_inserted").line == 21


def test_reordered_lines(data: Data) -> None:
    """The same lines in another order are told apart from changed lines."""
    edit_lines(data, lambda ls: [*ls[:30], ls[31], ls[30], *ls[32:]])
    v = verdicts(data)[("gw1", D)]
    assert "lines_reordered" in codes(v) and "line_changed" not in codes(v)
    assert next(r for r in v.reasons if r.code == "lines_reordered").line == 31


def test_truncated_file(data: Data) -> None:
    """A file cut short is named as truncated, with the first missing line."""
    edit_lines(data, lambda ls: ls[:35])
    v = verdicts(data)[("gw1", D)]
    assert "file_truncated" in codes(v)
    assert next(r for r in v.reasons if r.code == "file_truncated").line == 36


def test_appended_lines(data: Data) -> None:
    """Lines added to a sealed file are named."""
    edit_lines(data, lambda ls: [*ls, ls[0]])
    assert "lines_appended" in codes(verdicts(data)[("gw1", D)])


def test_removed_day(data: Data) -> None:
    """Removing a whole sealed day breaks the next day's link: day_removed."""
    folder = data.part("gw1", D).folder
    for p in folder.glob(f"{D:%d}.*"):
        p.unlink()
    found = verdicts(data)
    assert ("gw1", D) not in found
    assert "day_removed" in codes(found[("gw1", AFTER)])
    assert found[("gw1", BEFORE)].verdict == "OK"


def test_swapped_manifest(data: Data) -> None:
    """Another device's manifest (with its signature and stamp) in this day's place."""
    mine, theirs = data.part("gw1", D), data.part("gw2", D)
    for a, b in ((mine.manifest, theirs.manifest), (mine.p7s, theirs.p7s), (mine.tsr, theirs.tsr)):
        a.write_bytes(b.read_bytes())
    v = verdicts(data)[("gw1", D)]
    assert "manifest_swapped" in codes(v)


def test_days_swapped_within_a_device(data: Data) -> None:
    """Two days' manifests exchanged (all files consistent) are caught as swapped."""
    a, b = data.part("gw1", BEFORE), data.part("gw1", D)
    for x, y in ((a.manifest, b.manifest), (a.p7s, b.p7s), (a.tsr, b.tsr)):
        xb, yb = x.read_bytes(), y.read_bytes()
        x.write_bytes(yb)
        y.write_bytes(xb)
    found = verdicts(data)
    assert "manifest_swapped" in codes(found[("gw1", BEFORE)])
    assert "manifest_swapped" in codes(found[("gw1", D)])


def test_resigned_with_a_newer_key(data: Data) -> None:
    """After a rotation, a manifest re-signed with the new key is key_not_current."""
    time.sleep(1.1)  # the rotation is strictly after the stamps
    signer = KeyStore(data.settings.data_dir / "keys").rotate("ecdsa-p256")
    part = data.part("gw1", D)
    part.p7s.write_bytes(signer.sign_detached(part.manifest.read_bytes()))
    v = verdicts(data)[("gw1", D)]
    assert "key_not_current" in codes(v)
    # The days left alone still verify with the retired certificate.
    assert verdicts(data)[("gw1", BEFORE)].verdict == "OK"


def test_edited_manifest_resigned(data: Data) -> None:
    """A manifest edited to match an altered file and re-signed: the stamp and key give it away."""
    time.sleep(1.1)
    signer = KeyStore(data.settings.data_dir / "keys").rotate("ecdsa-p256")
    part = data.part("gw1", D)
    _raw, man = load(part.manifest)
    man["lines"] = 49
    part.manifest.write_bytes(dumps(man))
    part.p7s.write_bytes(signer.sign_detached(part.manifest.read_bytes()))
    v = verdicts(data)[("gw1", D)]
    assert "stamp_invalid" in codes(v)
    assert "manifest_chain_broken" in codes(
        verdicts(data)[("gw1", AFTER)]
    ) or "day_removed" in codes(verdicts(data)[("gw1", AFTER)])


def test_signed_with_a_foreign_key(data: Data, tmp_path: Path) -> None:
    """A signature by a key that is not in the key store: unknown_key."""
    other = KeyStore(tmp_path / "other-keys").init("ecdsa-p256")
    part = data.part("gw1", D)
    part.p7s.write_bytes(other.sign_detached(part.manifest.read_bytes()))
    assert "unknown_key" in codes(verdicts(data)[("gw1", D)])


def test_forged_token(data: Data, tmp_path: Path) -> None:
    """A token from a TSA that is not trusted, or an altered token: stamp_invalid."""
    part = data.part("gw1", D)
    rogue = BuiltinTsa(tmp_path / "rogue-tsa")
    part.tsr.write_bytes(rogue.stamp(part.manifest.read_bytes()).response)
    v = verdicts(data)[("gw1", D)]
    assert "stamp_invalid" in codes(v)
    # A real token of another manifest.
    part.tsr.write_bytes(data.part("gw2", D).tsr.read_bytes())
    assert "stamp_invalid" in codes(verdicts(data)[("gw1", D)])
    # A real token with one byte of its signature changed.
    token = bytearray(data.part("gw1", BEFORE).tsr.read_bytes())
    token[-5] ^= 0xFF
    data.part("gw1", BEFORE).tsr.write_bytes(bytes(token))
    assert "stamp_invalid" in codes(verdicts(data)[("gw1", BEFORE)])


def test_missing_files(data: Data) -> None:
    """A removed day file, signature or manifest is named."""
    data.part("gw1", D).log.unlink()
    data.part("gw2", D).p7s.unlink()
    found = verdicts(data)
    assert "file_missing" in codes(found[("gw1", D)])
    assert "signature_missing" in codes(found[("gw2", D)])
    data.part("gw1", AFTER).manifest.unlink()
    assert "manifest_missing" in codes(verdicts(data)[("gw1", AFTER)])


def test_tampered_compressed_file(data: Data) -> None:
    """A compressed day file is verified through decompression; a changed line is found."""
    import zstandard

    from logmaster.archive.compress import compress_part

    part = data.part("gw1", D)
    assert compress_part(part, "zstd", None, force=True) == "compressed"
    assert verdicts(data)[("gw1", D)].verdict == "OK"
    zst = part.log.with_name(part.log.name + ".zst")
    plain = zstandard.ZstdDecompressor().decompressobj().decompress(zst.read_bytes())
    zst.write_bytes(
        zstandard.ZstdCompressor().compress(plain.replace(b"message 000007", b"message 000070"))
    )
    v = verdicts(data)[("gw1", D)]
    assert "line_changed" in codes(v)


def test_removed_newest_day(data: Data) -> None:
    """Removing the newest sealed day (no later day links to it) is still named."""
    for p in data.part("gw1", AFTER).folder.glob(f"{AFTER:%d}.*"):
        p.unlink()
    assert "day_removed" in codes(verdicts(data)[("gw1", AFTER)])
