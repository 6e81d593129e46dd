"""Evidence bundles: verified by verify.sh with sha256sum + openssl only, tampering named."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from archive_helpers import DAY
from seal_support import Data, make_data

from logmaster.archive.bundle import BundleError, export_days
from logmaster.archive.compress import compress_part

DAYS = [DAY + dt.timedelta(days=i) for i in range(3)]
# What verify.sh may call: POSIX sh and text tools, sha256sum, openssl. Nothing else.
TOOLS = (
    "sh", "sha256sum", "openssl", "sed", "grep", "awk", "cat", "sort", "od", "tr", "mktemp",
    "rm", "wc", "cut", "head", "dirname", "basename",
)  # fmt: skip


@pytest.fixture(scope="module")
def tool_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH holding only the tools above (no Python, no LogMaster)."""
    folder = tmp_path_factory.mktemp("tools")
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed by the test"
        (folder / tool).symlink_to(found)
    return str(folder)


def sealed(tmp_path: Path, index: bool = False) -> Data:
    d = make_data(tmp_path)
    for day in DAYS:
        d.write("gw1", day, n=25)
        d.write("fw2", day, n=5)
    for day in DAYS:
        d.seal(day)
    if index:
        from logmaster.index.indexer import Indexer

        indexer = Indexer.from_settings(d.settings)
        try:
            indexer.catch_up()
        finally:
            indexer.close()
    # One day compressed, as after a real sealer pass: the bundle holds it uncompressed.
    assert compress_part(d.part("gw1", DAYS[1]), "zstd", None, force=True) == "compressed"
    return d


@pytest.fixture
def data(tmp_path: Path) -> Data:
    return sealed(tmp_path)


def export(data: Data, tmp_path: Path, **kw: object) -> Path:
    out = tmp_path / "bundle.zip"
    with out.open("wb") as fh:
        export_days(data.settings, "gw1", DAYS[0], DAYS[-1], fh, exported_by="tester", **kw)  # type: ignore[arg-type]
    folder = tmp_path / "unpacked"
    folder.mkdir()
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder)
    return folder


def run_verify(folder: Path, tool_path: str, script: str = "verify.sh") -> tuple[int, str]:
    proc = subprocess.run(
        ["sh", script],
        check=False,
        cwd=folder,
        env={"PATH": tool_path, "HOME": str(folder)},
        executable=os.path.join(tool_path, "sh"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_bundle_verifies_with_openssl_only(data: Data, tmp_path: Path, tool_path: str) -> None:
    """An unpacked bundle passes verify.sh with only sha256sum/openssl/sh tools on the PATH."""
    folder = export(data, tmp_path)
    code, output = run_verify(folder, tool_path)
    assert code == 0, output
    for day in DAYS:
        assert f"OK    gw1 {day:%d.%m.%Y}: signature OK, timestamp OK" in output
    assert "NOT from an accredited TSA" in output
    assert "RESULT: OK" in output
    # The compressed day is in the bundle uncompressed, byte for byte the sealed file.
    day_file = folder / "archive/gw1/2026/11/29.log"
    assert day_file.read_bytes().count(b"\n") == 25
    body = json.loads((folder / "bundle.json").read_text())
    assert body["exported_by"] == "tester" and body["device"] == "gw1"
    assert body["stamps"]["accredited"] is False
    assert "not from an accredited TSA" in body["stamps"]["notice"]
    assert len(body["days"]) == 3 and not (folder / "archive/fw2").exists()
    names = {f["name"] for f in body["files"]}
    assert {"verify.sh", "VERIFY.md", "certs/operator-chain.pem", "certs/tsa-ca.pem"} <= names
    verify_md = (folder / "VERIFY.md").read_text()
    assert "akredite bir zaman damgası sağlayıcısından değildir" in verify_md
    assert "not from an accredited TSA" in verify_md
    assert "openssl ts -verify -data" in verify_md and "openssl cms -verify" in verify_md
    sums = (folder / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == len(names) + 1  # every file but SHA256SUMS itself, bundle.json included


def test_changed_byte_is_named(data: Data, tmp_path: Path, tool_path: str) -> None:
    """One byte changed in a day file: SHA256SUMS and that day FAIL, the others stay OK."""
    folder = export(data, tmp_path)
    day_file = folder / "archive/gw1/2026/11/29.log"
    raw = bytearray(day_file.read_bytes())
    raw[100] ^= 0x01
    day_file.write_bytes(bytes(raw))
    code, output = run_verify(folder, tool_path)
    assert code == 1, output
    assert "archive/gw1/2026/11/29.log: FAILED" in output
    assert "FAIL  gw1 29.11.2026" in output and "29.log changed: SHA-256 differs" in output
    assert "OK    gw1 28.11.2026" in output and "OK    gw1 30.11.2026" in output
    assert "RESULT: FAIL" in output


def test_swapped_manifest_is_named(data: Data, tmp_path: Path, tool_path: str) -> None:
    """Manifests of two days swapped (with their signatures and tokens): both days FAIL."""
    folder = export(data, tmp_path)
    base = folder / "archive/gw1/2026/11"
    for suffix in ("", ".p7s", ".tsr"):
        a, b = base / f"28.manifest.json{suffix}", base / f"29.manifest.json{suffix}"
        tmp = base / "swap"
        a.rename(tmp)
        b.rename(a)
        tmp.rename(b)
    # Whoever swapped them also rewrote SHA256SUMS: verify.sh must not rely on it.
    sums = subprocess.run(
        ["sha256sum", *sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                              if p.is_file() and p.name != "SHA256SUMS")],
        cwd=folder, capture_output=True, check=True,
    ).stdout  # fmt: skip
    (folder / "SHA256SUMS").write_bytes(sums)
    code, output = run_verify(folder, tool_path)
    assert code == 1, output
    assert "every file matches SHA256SUMS" in output
    assert "manifest is for gw1 2026-11-29 part 0, not gw1 2026-11-28 part 0 (swapped?)" in output
    assert "manifest is for gw1 2026-11-28 part 0, not gw1 2026-11-29 part 0 (swapped?)" in output


def test_removed_token_is_named(data: Data, tmp_path: Path, tool_path: str) -> None:
    """A .tsr removed from the bundle: that day FAILs with the token named."""
    folder = export(data, tmp_path)
    (folder / "archive/gw1/2026/11/30.manifest.json.tsr").unlink()
    code, output = run_verify(folder, tool_path)
    assert code == 1, output
    assert "30.manifest.json.tsr: FAILED open or read" in output
    assert "FAIL  gw1 30.11.2026" in output and "timestamp token (.tsr) missing" in output


def test_removed_day_breaks_the_chain(data: Data, tmp_path: Path, tool_path: str) -> None:
    """The middle day removed from manifests.txt and the bundle: the chain names the gap."""
    folder = export(data, tmp_path)
    listing = folder / "manifests.txt"
    listing.write_text(
        "".join(line + "\n" for line in listing.read_text().splitlines() if "/29." not in line)
    )
    code, output = run_verify(folder, tool_path)
    assert code == 1, output
    assert "gw1: sequence 1 is followed by 3: manifests removed" in output


def test_forged_signature_is_named(data: Data, tmp_path: Path, tool_path: str) -> None:
    """A manifest edited after sealing (sha256 rewritten to a forged file): signature FAILs."""
    folder = export(data, tmp_path)
    man = folder / "archive/gw1/2026/11/28.manifest.json"
    man.write_text(man.read_text().replace('"lines": 25', '"lines": 24'))
    code, output = run_verify(folder, tool_path)
    assert code == 1, output
    assert "FAIL  gw1 28.11.2026" in output and "signature (.p7s) invalid" in output
    assert "timestamp (.tsr) invalid" in output


def test_supplement_and_chain_links(data: Data, tmp_path: Path, tool_path: str) -> None:
    """A supplement sealed after later days: exporting its day alone adds chain links."""
    data.write("gw1", DAYS[0], n=3, start=100)  # late lines -> supplement 1 of the first day
    data.seal(DAYS[0])
    assert data.part("gw1", DAYS[0], 1).manifest.exists()
    out = tmp_path / "b.zip"
    with out.open("wb") as fh:
        summary = export_days(data.settings, "gw1", DAYS[0], DAYS[0], fh)
    assert [e["part"] for e in summary.entries] == [0, 1]
    assert [e["kind"] for e in summary.bundle["chain_links"]] == ["link", "link"]
    folder = tmp_path / "u"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder)
    code, output = run_verify(folder, tool_path)
    assert code == 0, output
    assert "OK    gw1 28.11.2026 supplement 1" in output
    assert "chain link only" in output
    assert not (folder / "archive/gw1/2026/11/29.log").exists()


def test_unsealed_day_is_left_out(data: Data, tmp_path: Path) -> None:
    """A day without a manifest is not exported and is listed as not included."""
    later = DAYS[-1] + dt.timedelta(days=1)
    data.write("gw1", later, n=4)
    out = tmp_path / "b.zip"
    with out.open("wb") as fh:
        summary = export_days(data.settings, "gw1", DAYS[-1], later, fh)
    assert [e["date"] for e in summary.entries] == [DAYS[-1].isoformat()]
    assert summary.left_out[0]["date"] == later.isoformat()
    with pytest.raises(BundleError, match="no sealed day"), (tmp_path / "c.zip").open("wb") as fh:
        export_days(data.settings, "gw1", later, later, fh)
    with pytest.raises(BundleError, match="no device"), (tmp_path / "d.zip").open("wb") as fh:
        export_days(data.settings, "nope", later, later, fh)


def test_altered_archive_refuses_export(data: Data, tmp_path: Path) -> None:
    """A day file that no longer matches its manifest is not exported as if it were sound."""
    path = data.part("gw1", DAYS[0]).log
    raw = bytearray(path.read_bytes())
    raw[10] ^= 1
    path.write_bytes(bytes(raw))
    with (
        pytest.raises(BundleError, match="does not match its manifest"),
        (tmp_path / "b.zip").open("wb") as fh,
    ):
        export_days(data.settings, "gw1", DAYS[0], DAYS[0], fh)


def test_query_extract_with_proofs(tmp_path: Path, tool_path: str) -> None:
    """--query: the matching lines, each with a Merkle proof verify_proof.sh accepts."""
    data = sealed(tmp_path, index=True)
    folder = export(data, tmp_path, query='"message 000007" OR "message 000020"')
    extract = (folder / "extract/lines.txt").read_bytes().splitlines()
    assert len(extract) == 6  # two lines on each of three days
    assert all(b"message 000007" in x or b"message 000020" in x for x in extract)
    code, output = run_verify(folder, tool_path)
    assert code == 0, output
    assert output.count("the line belongs to") == 6
    proof = folder / "extract/proofs/gw1/2026-11-28/8"
    assert json.loads((proof / "proof.json").read_text())["line"] == 8
    code, output = run_verify(folder, tool_path, "verify_proof.sh")
    assert code == 2  # usage: one proof or --all
    proc = subprocess.run(
        ["sh", "verify_proof.sh", "extract/proofs/gw1/2026-11-28/8"],
        cwd=folder, env={"PATH": tool_path}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and "OK" in proc.stdout
    # A different line with the same proof does not reach the manifest's root.
    (proof / "line").write_bytes((proof / "line").read_bytes().replace(b"000007", b"000008"))
    code, output = run_verify(folder, tool_path)
    assert code == 1
    assert "FAIL  extract/proofs/gw1/2026-11-28/8: the proof does not lead" in output


def test_daily_stamp_mode_verifies_through_the_list(tmp_path: Path, tool_path: str) -> None:
    """Stamp mode daily: no .tsr per manifest; verify.sh checks the stamped daily list."""
    data = make_data(tmp_path, seal={"stamp_mode": "daily"})
    for day in DAYS[:2]:
        data.write("gw1", day, n=10)
        data.seal(day)
    assert not data.part("gw1", DAYS[0]).tsr.exists()
    folder = tmp_path / "u"
    out = tmp_path / "b.zip"
    with out.open("wb") as fh:
        export_days(data.settings, "gw1", DAYS[0], DAYS[1], fh)
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder)
    assert (folder / "archive/_daily/2026/11/28.list.json.tsr").exists()
    code, output = run_verify(folder, tool_path)
    assert code == 0, output
    assert "timestamp OK via daily list archive/_daily/2026/11/28.list.json" in output
    # The list's token removed: both the sums and the day name it.
    (folder / "archive/_daily/2026/11/29.list.json.tsr").unlink()
    code, output = run_verify(folder, tool_path)
    assert code == 1 and "FAIL  gw1 29.11.2026" in output


def test_cli_export_writes_audits_and_never_overwrites(data: Data, tmp_path: Path) -> None:
    """logmaster export: a new ZIP (no partial file left), audited; an existing file is kept."""
    from typer.testing import CliRunner

    from logmaster.cli import app

    out = tmp_path / "gw1.zip"
    first, last = DAYS[0].isoformat(), DAYS[-1].isoformat()
    args = ["export", "--data-dir", str(data.settings.data_dir), "--device", "gw1",
            "--from", first, "--to", last, "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "3 sealed day part(s)" in res.output and "accredited" in res.output
    with zipfile.ZipFile(out) as zf:
        assert "verify.sh" in zf.namelist()
    assert not list(tmp_path.glob(".*partial"))
    before = out.read_bytes()
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "exists" in res.output and out.read_bytes() == before
    res = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "none.zip"), "--from", "2020-01-01",
                                   "--to", "2020-01-02"])  # fmt: skip
    assert res.exit_code == 2 and "no sealed day" in res.output
    assert not (tmp_path / "none.zip").exists() and not list(tmp_path.glob(".*partial"))
    import sqlalchemy as sa

    from logmaster.api.models import AuditEntry
    from logmaster.db import make_engine

    engine = make_engine(data.settings.db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(AuditEntry.action, AuditEntry.target, AuditEntry.actor)).all()
    engine.dispose()
    assert [(a, t) for a, t, _ in rows] == [("export", f"gw1 {DAYS[0]}..{DAYS[-1]}")]
    assert rows[0][2].startswith("cli:")


def test_pending_stamp_is_exported_and_named(tmp_path: Path, tool_path: str) -> None:
    """A day whose stamp is still queued: exported, listed as pending, and verify.sh FAILs it."""
    from seal_support import DownTsa

    data = make_data(tmp_path)
    data.write("gw1", DAY, n=6)
    [result] = data.seal(DAY, stamper=DownTsa())
    assert result.state == "stamp_pending"
    out = tmp_path / "b.zip"
    with out.open("wb") as fh:
        summary = export_days(data.settings, "gw1", DAY, DAY, fh)
    assert summary.pending == 1
    assert summary.bundle["stamps"]["pending"] == ["archive/gw1/2026/11/28.manifest.json"]
    folder = tmp_path / "u"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder)
    assert "still pending" in (folder / "VERIFY.md").read_text()
    code, output = run_verify(folder, tool_path)
    assert code == 1 and "timestamp token (.tsr) missing" in output
