"""One-pass Merkle proofs (merkle.audit_paths / merkle.proofs) and `archive prove` of many lines."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from seal_support import make_data

from logmaster.archive import merkle


def _lines(n: int) -> list[bytes]:
    return [b"line %d" % i for i in range(n)]


@pytest.mark.parametrize("size", [*range(1, 34), 100, 257])
def test_audit_paths_equal_the_per_proof_paths(size: int) -> None:
    """Every path of the one-pass walk is RFC 6962 PATH, and its root the tree's root."""
    lines = _lines(size)
    leaves = [merkle.leaf_hash(x) for x in lines]
    root, paths = merkle.audit_paths(iter(leaves), size, range(size))
    assert root == merkle.root_of(lines)
    for i in range(size):
        assert paths[i] == merkle.audit_path(leaves, i)
    some = [0, size // 2, size - 1]
    assert merkle.proofs(iter(lines), size, [n + 1 for n in some]) == [
        merkle.make_proof(lines, n + 1) for n in sorted(set(some))
    ]


def test_audit_paths_bad_input() -> None:
    """Out-of-tree indexes, too few and too many lines are refused, not answered wrongly."""
    leaves = [merkle.leaf_hash(x) for x in _lines(5)]
    with pytest.raises(IndexError, match="leaf 5 outside"):
        merkle.audit_paths(iter(leaves), 5, [5])
    with pytest.raises(IndexError, match="leaf -1 outside"):
        merkle.audit_paths(iter(leaves), 5, [-1, 2])
    with pytest.raises(ValueError, match="fewer than 6 leaves"):
        merkle.audit_paths(iter(leaves), 6, [1])
    with pytest.raises(IndexError, match="line 6 does not exist"):
        merkle.proofs(iter(_lines(5)), 5, [6])
    with pytest.raises(ValueError, match="more than 4 lines"):
        merkle.proofs(iter(_lines(5)), 4, [1])
    assert merkle.audit_paths(iter([]), 0, []) == (merkle.EMPTY_ROOT, {})
    assert merkle.audit_paths(iter(leaves), 5, [])[0] == merkle.root_of(_lines(5))


def test_prove_several_lines(tmp_path: Path) -> None:
    """`archive prove --line A --line B` prints a JSON array; each proof checks; bad files fail."""
    data = make_data(tmp_path)
    day = dt.date(2026, 11, 20)
    data.write("gw1", day, n=40)
    data.seal(day)
    base = [sys.executable, "-m", "logmaster", "archive", "prove"]
    base += ["--data-dir", str(data.settings.data_dir), "--device", "gw1", "--date", "2026-11-20"]
    done = subprocess.run(
        [*base, "--line", "3", "--line", "40", "--line", "17"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    proofs = json.loads(done.stdout)
    assert [p["line"] for p in proofs] == [3, 17, 40]
    man = json.loads(data.part("gw1", day).manifest.read_bytes())
    lines = data.part("gw1", day).log.read_bytes().splitlines()
    for p in proofs:
        assert merkle.check_proof(p, man["merkle_root"], man["lines"]) == lines[p["line"] - 1]
        assert p["manifest"] == "gw1/2026/11/20.manifest.json"
    # A line appended after sealing: the file no longer matches its manifest.
    with open(data.part("gw1", day).log, "ab") as fh:
        fh.write(lines[0] + b"\n")
    refused = subprocess.run(
        [*base, "--line", "3", "--line", "4"], check=False, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "does not match its manifest" in refused.stderr
