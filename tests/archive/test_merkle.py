"""Merkle roots follow RFC 6962; inclusion proofs verify, and every altered proof fails."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from archive_helpers import DAY, lines_for, write_batches

from logmaster.archive import merkle
from logmaster.archive.manifest import scan_file


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written as the RFC states it (recursive)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


# The leaves of the certificate-transparency reference tests and their published roots.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f")
]  # fmt: skip
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


def test_root_matches_published_vectors() -> None:
    """The streaming root equals the certificate-transparency test vectors."""
    for n, root in CT_ROOTS.items():
        assert merkle.root_of(CT_LEAVES[:n]).hex() == root


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100])
def test_root_matches_the_rfc_definition(n: int) -> None:
    """Every tree size, perfect or not, folds like the RFC's recursive definition."""
    leaves = [b"line %d" % i for i in range(n)]
    assert merkle.root_of(leaves) == reference_root(leaves)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 21])
def test_every_line_has_a_proof(n: int) -> None:
    """A proof for each line leads to the root and names that line."""
    lines = [b"2026-11-28T10:00:00.000000+03:00 10.0.0.1 msg %d" % i for i in range(n)]
    root = merkle.root_of(lines).hex()
    for number in range(1, n + 1):
        proof = merkle.make_proof(lines, number)
        assert proof["merkle_root"] == root
        assert merkle.check_proof(proof, root) == lines[number - 1]


def test_altered_proofs_fail() -> None:
    """Another line, a changed sibling, a swapped side, another index or root: each fails."""
    lines = [b"line %d" % i for i in range(11)]
    root = merkle.root_of(lines).hex()
    good = merkle.make_proof(lines, 6)

    def altered(**change: object) -> dict[str, object]:
        return {**json.loads(json.dumps(good)), **change}

    path = [dict(p) for p in good["path"]]
    path[1]["hash"] = "00" * 32
    sides = [dict(p) for p in good["path"]]
    sides[0]["side"] = "left" if sides[0]["side"] == "right" else "right"
    cases = {
        "line": altered(line_text="line 7"),
        "sibling": altered(path=path),
        "side": altered(path=sides),
        "index": altered(leaf_index=7),
        "size": altered(tree_size=12),
    }
    for name, proof in cases.items():
        with pytest.raises(merkle.ProofError):
            merkle.check_proof(proof, root, 11)
        assert name
    with pytest.raises(merkle.ProofError, match="manifest's merkle_root"):
        merkle.check_proof(good, "11" * 32)
    with pytest.raises(IndexError):
        merkle.make_proof(lines, 12)


def test_scan_computes_the_same_root(tmp_path: Path) -> None:
    """The one-pass scan of a day file gives the root of its lines without LF."""
    lines = lines_for("gw1", n=77)
    path = write_batches(tmp_path, "gw1", [lines[:40], lines[40:]])
    scan = scan_file(path, "gw1", DAY)
    assert scan.merkle_root == merkle.root_of([x[:-1] for x in lines]).hex()
    assert scan.lines == 77
    assert scan.sha256 == hashlib.sha256(b"".join(lines)).hexdigest()


def test_manual_check_steps_work_with_printf_and_openssl(tmp_path: Path) -> None:
    """The shell steps printed with every proof recompute the root with openssl alone."""
    lines = lines_for("gw1", n=23)
    stripped = [x[:-1] for x in lines]
    proof = merkle.make_proof(stripped, 9)
    script = tmp_path / "check.sh"
    steps = "\n".join(
        f"[ {p['side']} = left ] && H=$({{ printf '\\001'; bin {p['hash']}; bin $H; }} | h) "
        f"|| H=$({{ printf '\\001'; bin $H; bin {p['hash']}; }} | h)"
        for p in proof["path"]
    )
    script.write_text(
        f"{merkle.MANUAL_CHECK[0]}\n{merkle.MANUAL_CHECK[1]}\n"
        f"LINE_TEXT='{proof['line_text']}'\n"
        "H=$({ printf '\\000'; printf '%s' \"$LINE_TEXT\"; } | h)\n"
        f"{steps}\necho $H\n"
    )
    got = subprocess.run(["bash", str(script)], capture_output=True, check=True, text=True)
    assert got.stdout.strip() == proof["merkle_root"]
    assert sys.executable


def test_prove_and_check_proof_commands(tmp_path: Path) -> None:
    """`archive prove` prints a proof the manifest's root accepts; an altered one fails."""
    import datetime as dt

    from seal_support import make_data

    data = make_data(tmp_path)
    day = dt.date(2026, 11, 20)
    data.write("gw1", day, n=40)
    data.seal(day)
    base = [sys.executable, "-m", "logmaster", "archive"]
    d = str(data.settings.data_dir)
    proved = subprocess.run(
        [
            *base,
            "prove",
            "--data-dir",
            d,
            "--device",
            "gw1",
            "--date",
            "2026-11-20",
            "--line",
            "17",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proved.returncode == 0, proved.stderr
    proof = json.loads(proved.stdout)
    assert proof["line"] == 17 and proof["tree_size"] == 40
    assert (
        proof["line_text"].encode() + b"\n"
        == data.part("gw1", day).log.read_bytes().splitlines(keepends=True)[16]
    )
    path = tmp_path / "proof.json"
    path.write_text(proved.stdout)
    manifest = str(data.part("gw1", day).manifest)
    ok = subprocess.run(
        [*base, "check-proof", str(path), "--manifest", manifest],
        check=False,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "OK/TAMAM" in ok.stdout
    proof["line_text"] = proof["line_text"].replace("message", "massage")
    path.write_text(json.dumps(proof))
    bad = subprocess.run(
        [*base, "check-proof", str(path), "--manifest", manifest],
        check=False,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "FAIL/HATA" in bad.stdout
    missing = subprocess.run(
        [
            *base,
            "prove",
            "--data-dir",
            d,
            "--device",
            "gw1",
            "--date",
            "2026-11-20",
            "--line",
            "41",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "line 41 does not exist" in missing.stderr
