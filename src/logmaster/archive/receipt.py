"""Deletion receipts as verification sees them: which purged manifests a valid receipt covers.

After a retention purge (``retention.purge``) the oldest remaining manifest of a device still
names its predecessor in ``previous_manifest_sha256``, a manifest that no longer exists. The
verification accepts that link only when a deletion receipt under ``<archive>/_receipts/``
lists that manifest (SHA-256, device, sequence) and the receipt itself holds:

- its ``.p7s`` is a detached CMS signature over the receipt's exact bytes by a key of the key
  store that was the current signing key at the receipt's stamp time (``verdict.check_signature``);
- its ``.tsr`` is an RFC 3161 token over the receipt's bytes that verifies against the TSA
  certificates (``tsa.check_response``). A receipt whose stamp is still queued is *pending*:
  the day that links to it is PENDING, not OK.

A manifest removed without a receipt stays ``day_removed``; one "covered" by a receipt that
does not verify (edited, re-signed, forged stamp) is ``receipt_invalid``.

Receipts are read and checked once per process and receipts folder state (name, size, mtime of
every file): verification runs one process per group of devices, and one purge run writes one
receipt for every device it touched.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

if TYPE_CHECKING:
    from logmaster.archive.verdict import Trust


@dataclass(frozen=True)
class Purged:
    """One purged manifest as a receipt states it, with what the receipt's check found."""

    receipt: str  # the receipt's file name
    device: str
    day: dt.date
    part: int
    sequence: int | None
    manifest: str  # path relative to the archive
    error: str | None = None  # why the receipt does not verify; None when it does
    pending: bool = False  # the receipt's stamp is not there yet

    @property
    def valid(self) -> bool:
        return self.error is None


@dataclass
class _Checked:
    error: str | None
    pending: bool
    body: dict[str, Any]


def check_receipt(path: Path, trust: Trust, tsa_certs: list[x509.Certificate]) -> _Checked:
    """Check one receipt's format, signature and stamp; never raises for a bad receipt."""
    from logmaster.archive.retention import RECEIPT_FORMAT
    from logmaster.archive.tsa import TsaError, check_response
    from logmaster.archive.verdict import SignatureError, check_signature

    try:
        data = path.read_bytes()
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("format") != RECEIPT_FORMAT:
            raise ValueError(f"not a deletion receipt (format {RECEIPT_FORMAT} expected)")
    except (OSError, ValueError) as exc:
        return _Checked(f"unreadable receipt: {exc}", False, {})
    gen_time: dt.datetime | None = None
    pending = False
    tsr = path.with_name(path.name + ".tsr")
    try:
        response = tsr.read_bytes()
    except FileNotFoundError:
        pending = True
    except OSError as exc:
        return _Checked(f"{tsr.name}: {exc}", False, body)
    else:
        try:
            gen_time = check_response(
                response, data, tsa_certs, require_chain=trust.tsa_chain_required
            ).gen_time
        except TsaError as exc:
            return _Checked(f"{tsr.name}: {exc.detail}", False, body)
    p7s = path.with_name(path.name + ".p7s")
    try:
        check_signature(p7s.read_bytes(), data, trust, gen_time, None)
    except OSError as exc:
        return _Checked(f"{p7s.name}: {exc.strerror or exc}", False, body)
    except SignatureError as exc:
        return _Checked(f"{p7s.name}: {exc}", False, body)
    return _Checked(None, pending, body)


class Receipts:
    """The purged manifests of every receipt in ``<archive>/_receipts``, checked lazily."""

    def __init__(self, root: Path, trust: Trust, tsa_certs: list[x509.Certificate]) -> None:
        from logmaster.archive.retention import RECEIPTS_DIR

        self.folder = root / RECEIPTS_DIR
        self.trust = trust
        self.tsa_certs = tsa_certs
        self._by_sha: dict[str, list[Purged]] | None = None
        self._by_path: dict[str, list[Purged]] = {}

    def _load(self) -> dict[str, list[Purged]]:
        if self._by_sha is not None:
            return self._by_sha
        by_sha: dict[str, list[Purged]] = {}
        for path in sorted(self.folder.glob("*.receipt.json")):
            checked = check_receipt(path, self.trust, self.tsa_certs)
            for purged in _purged(path.name, checked):
                by_sha.setdefault(purged.manifest_sha256, []).append(purged.entry)
                self._by_path.setdefault(purged.entry.manifest, []).append(purged.entry)
        self._by_sha = by_sha
        return by_sha

    def by_sha(self, sha: str, device: str) -> Purged | None:
        """The receipt entry of a purged manifest of ``device``: a valid one if any."""
        return _best(self._load().get(sha, []), device)

    def by_path(self, manifest: str, device: str) -> Purged | None:
        """Same, by the manifest's path relative to the archive."""
        self._load()
        return _best(self._by_path.get(manifest, []), device)


@dataclass(frozen=True)
class _Entry:
    manifest_sha256: str
    entry: Purged


def _purged(name: str, checked: _Checked) -> list[_Entry]:
    out: list[_Entry] = []
    for day in checked.body.get("days") or []:
        try:
            device = str(day["device"])
            date = dt.date.fromisoformat(str(day["date"]))
            for part in day.get("parts") or []:
                seq = part.get("sequence")
                out.append(
                    _Entry(
                        str(part["manifest_sha256"]),
                        Purged(
                            name,
                            device,
                            date,
                            int(part.get("part", 0)),
                            int(seq) if seq is not None else None,
                            str(part.get("manifest", "")),
                            checked.error,
                            checked.pending,
                        ),
                    )
                )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a malformed entry covers nothing
    return out


def _best(found: list[Purged], device: str) -> Purged | None:
    mine = [p for p in found if p.device == device]
    valid = [p for p in mine if p.valid]
    done = [p for p in valid if not p.pending]
    best = done or valid or mine
    return best[0] if best else None


_CACHE: dict[tuple[Any, ...], Receipts] = {}


def receipts_for(root: Path, trust: Trust, tsa_certs: list[x509.Certificate]) -> Receipts:
    """The process's Receipts for this folder state (files added or changed start afresh)."""
    from logmaster.archive.retention import RECEIPTS_DIR

    folder = root / RECEIPTS_DIR
    try:
        state = tuple(
            sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())
        )
    except OSError:
        state = ()
    key = (str(folder), state, tuple(trust.signing), trust.tsa, trust.tsa_chain_required)
    found = _CACHE.get(key)
    if found is None:
        _CACHE.clear()
        found = _CACHE[key] = Receipts(root, trust, tsa_certs)
    return found
