"""The Merkle tree of a day file (RFC 6962 / RFC 9162 section 2.1) and inclusion proofs.

Leaves are the lines of the file *without* their LF::

    leaf(line)      = SHA-256(0x00 || line)
    node(left, right) = SHA-256(0x01 || left || right)

and the tree over n leaves splits at the largest power of two below n, exactly as in RFC 6962, so
any RFC 6962 tool (or ``openssl dgst -sha256``, one step at a time) can check a proof. A proof
shows that one line belongs to a sealed day without revealing the other lines: the manifest
holds the root, the proof the line and the sibling hashes on the way up.

:class:`MerkleTree` folds leaves as they stream past (memory: one hash per level), so sealing
and verification compute the root in the same pass as the file hash and the chain.
:func:`audit_paths` / :func:`proofs` build any number of proofs in one pass over a day
(evidence bundle extracts, ``logmaster archive prove`` with several ``--line``);
:func:`make_proof` builds one from lines in memory.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

LEAF = b"\x00"
NODE = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
PROOF_FORMAT = "logmaster-merkle-proof/1"


def leaf_hash(line: bytes) -> bytes:
    return hashlib.sha256(LEAF + line).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE + left + right).digest()


class MerkleTree:
    """Streaming root: a stack of perfect subtrees, merged as equal sizes meet."""

    __slots__ = ("count", "stack")

    def __init__(self) -> None:
        self.count = 0
        self.stack: list[bytes] = []

    def add_lines(self, lines: Iterable[bytes]) -> None:
        """Add lines (without LF) as leaves, in order. The hot loop of sealing."""
        sha = hashlib.sha256
        stack = self.stack
        pop = stack.pop
        push = stack.append
        n = self.count
        for line in lines:
            h = sha(LEAF + line).digest()
            k = n
            while k & 1:
                h = sha(NODE + pop() + h).digest()
                k >>= 1
            push(h)
            n += 1
        self.count = n

    def root(self) -> bytes:
        """RFC 6962 MTH of the leaves so far (SHA-256 of nothing for an empty tree)."""
        if not self.stack:
            return EMPTY_ROOT
        # The stack holds perfect subtrees, largest first; RFC 6962 folds them from the right.
        acc = self.stack[-1]
        for h in reversed(self.stack[:-1]):
            acc = node_hash(h, acc)
        return acc


def root_of(lines: Iterable[bytes]) -> bytes:
    tree = MerkleTree()
    tree.add_lines(lines)
    return tree.root()


def _mth(leaves: list[bytes], lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return leaves[lo]
    k = _split(hi - lo)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def audit_path(leaves: list[bytes], index: int) -> list[tuple[str, bytes]]:
    """RFC 6962 PATH(index, leaves), leaf level first, each hash with the side it sits on."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} outside a tree of {len(leaves)} leaves")
    path: list[tuple[str, bytes]] = []
    lo, hi, m = 0, len(leaves), index
    # Walk down from the root, then reverse: the proof lists the lowest sibling first.
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(("right", _mth(leaves, lo + k, hi)))
            hi = lo + k
        else:
            path.append(("left", _mth(leaves, lo, lo + k)))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def sides(index: int, size: int) -> list[str]:
    """The side of each sibling on the path of leaf ``index`` in a tree of ``size`` leaves."""
    out: list[str] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            out.append("right")
            hi = lo + k
        else:
            out.append("left")
            lo, m = lo + k, m - k
    out.reverse()
    return out


def _fold(leaves: Iterator[bytes], n: int) -> bytes:
    """RFC 6962 MTH of the next ``n`` leaf hashes (a stack of perfect subtrees)."""
    stack: list[bytes] = []
    for i in range(n):
        h = next(leaves)
        k = i
        while k & 1:
            h = node_hash(stack.pop(), h)
            k >>= 1
        stack.append(h)
    acc = stack[-1]
    for h in reversed(stack[:-1]):
        acc = node_hash(h, acc)
    return acc


def _walk(
    leaves: Iterator[bytes],
    lo: int,
    hi: int,
    targets: list[int],
    paths: dict[int, list[tuple[str, bytes]]],
) -> bytes:
    """MTH of leaves lo..hi, appending each target's siblings (lowest first) to its path."""
    if hi - lo == 1:
        return next(leaves)
    mid = lo + _split(hi - lo)
    cut = bisect.bisect_left(targets, mid)
    left_t, right_t = targets[:cut], targets[cut:]
    left = _walk(leaves, lo, mid, left_t, paths) if left_t else _fold(leaves, mid - lo)
    right = _walk(leaves, mid, hi, right_t, paths) if right_t else _fold(leaves, hi - mid)
    for t in left_t:
        paths[t].append(("right", right))
    for t in right_t:
        paths[t].append(("left", left))
    return node_hash(left, right)


def audit_paths(
    leaves: Iterable[bytes], size: int, indexes: Iterable[int]
) -> tuple[bytes, dict[int, list[tuple[str, bytes]]]]:
    """The root and the RFC 6962 PATH of every leaf in ``indexes``, in ONE pass over the leaves.

    ``leaves`` are the ``size`` leaf hashes in order (streamed: memory is one hash per level
    plus the paths). :func:`audit_path` recomputes the subtrees for each proof, a full pass per
    line: on a 500,000-line day 5.6 s per proof, against 10 s for 1,000 proofs here. Raises
    IndexError for an index outside the tree and ValueError when fewer than ``size`` leaves
    come.
    """
    targets = sorted(set(indexes))
    if targets and not (targets[0] >= 0 and targets[-1] < size):
        bad = targets[0] if targets[0] < 0 else targets[-1]
        raise IndexError(f"leaf {bad} outside a tree of {size} leaves")
    paths: dict[int, list[tuple[str, bytes]]] = {t: [] for t in targets}
    if size == 0:
        return EMPTY_ROOT, paths
    stream = iter(leaves)
    try:
        root = _walk(stream, 0, size, targets, paths) if targets else _fold(stream, size)
    except StopIteration:
        raise ValueError(f"fewer than {size} leaves") from None
    return root, paths


def proof_dict(line: bytes, index: int, size: int, path: list[tuple[str, bytes]]) -> dict[str, Any]:
    """A proof in the format :func:`check_proof` reads (``line`` without LF, UTF-8)."""
    leaf = leaf_hash(line)
    return {
        "format": PROOF_FORMAT,
        "line": index + 1,
        "line_text": line.decode(),  # archive lines are UTF-8 by construction
        "leaf_index": index,
        "tree_size": size,
        "leaf_hash": leaf.hex(),
        "path": [{"side": side, "hash": h.hex()} for side, h in path],
        "merkle_root": root_from_path(leaf, path).hex(),
    }


def proofs(lines: Iterable[bytes], size: int, numbers: Iterable[int]) -> list[dict[str, Any]]:
    """Proofs of the lines ``numbers`` (1-based) of ``size`` lines (without LF), in one pass.

    ``lines`` may be a stream (a day file read line by line): only the wanted lines are kept.
    Raises IndexError for a line that does not exist, ValueError when more or fewer lines come.
    """
    wanted = sorted({n - 1 for n in numbers})
    for n in wanted:
        if not 0 <= n < size:
            raise IndexError(f"line {n + 1} does not exist: the file has {size} lines")
    keep = set(wanted)
    texts: dict[int, bytes] = {}

    def leaves() -> Iterator[bytes]:
        for i, line in enumerate(lines):
            if i in keep:
                texts[i] = line
            yield leaf_hash(line)

    stream = leaves()
    _root, paths = audit_paths(stream, size, wanted)
    if next(stream, None) is not None:
        raise ValueError(f"more than {size} lines")
    return [proof_dict(texts[i], i, size, paths[i]) for i in wanted]


def root_from_path(leaf: bytes, path: list[tuple[str, bytes]]) -> bytes:
    h = leaf
    for side, sibling in path:
        h = node_hash(sibling, h) if side == "left" else node_hash(h, sibling)
    return h


class ProofError(ValueError):
    """An inclusion proof that is malformed or does not lead to the expected root."""


def check_proof(
    proof: dict[str, Any], expected_root: str | None = None, expected_size: int | None = None
) -> bytes:
    """Recompute the root of a proof made by :func:`make_proof`; return the line's bytes.

    ``expected_root`` / ``expected_size`` are the manifest's ``merkle_root`` and ``lines``.

    Raises :class:`ProofError` naming the first thing that does not hold.
    """
    try:
        if proof.get("format") != PROOF_FORMAT:
            raise ProofError(f"not a {PROOF_FORMAT} proof")
        line = str(proof["line_text"]).encode()
        index = int(proof["leaf_index"])
        size = int(proof["tree_size"])
        path = [(str(p["side"]), bytes.fromhex(p["hash"])) for p in proof["path"]]
        claimed_leaf = bytes.fromhex(proof["leaf_hash"])
        root = bytes.fromhex(proof["merkle_root"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ProofError):
            raise
        raise ProofError(f"malformed proof: {exc}") from exc
    if expected_size is not None and size != expected_size:
        raise ProofError(
            f"the proof is for a tree of {size} lines, the manifest has {expected_size}"
        )
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    if [s for s, _ in path] != sides(index, size):
        raise ProofError("the path's sides do not fit the leaf index and tree size")
    leaf = leaf_hash(line)
    if leaf != claimed_leaf:
        raise ProofError("the line does not hash to the proof's leaf hash")
    if root_from_path(leaf, path) != root:
        raise ProofError("the path does not lead to the proof's Merkle root")
    if expected_root is not None and root.hex() != expected_root:
        raise ProofError("the proof's Merkle root is not the manifest's merkle_root")
    return line


def make_proof(lines: list[bytes], number: int) -> dict[str, Any]:
    """The proof that line ``number`` (1-based, without LF) belongs to the tree of ``lines``."""
    if not 1 <= number <= len(lines):
        raise IndexError(f"line {number} does not exist: the file has {len(lines)} lines")
    leaves = [leaf_hash(line) for line in lines]
    return proof_dict(lines[number - 1], number - 1, len(lines), audit_path(leaves, number - 1))


# How to check a proof with a shell, printf and openssl only (shown in every proof).
MANUAL_CHECK = [
    "h() { openssl dgst -sha256 -binary | od -An -tx1 | tr -d ' \\n'; }",
    "bin() { printf \"$(printf '%s' \"$1\" | sed 's/../\\\\x&/g')\"; }",
    "H=$({ printf '\\000'; printf '%s' \"$LINE_TEXT\"; } | h)  # must equal leaf_hash",
    "for each path entry in order: side left:  H=$({ printf '\\001'; bin $HASH; bin $H; } | h)",
    "                              side right: H=$({ printf '\\001'; bin $H; bin $HASH; } | h)",
    "at the end H must equal merkle_root, the manifest's merkle_root; the manifest's .p7s "
    "(openssl cms -verify) and .tsr (openssl ts -verify) prove the manifest itself.",
]
