"""Verifying sealed device-days: one verdict per device-day (``logmaster verify``, the API).

For every part of a device-day (the day file and its supplements):

- the manifest names this device, date and part (else ``manifest_swapped``);
- the file (plain or compressed) is read once: SHA-256, line count, size, Merkle root, chain head
  and the hash chain against its sidecar; a difference is named as precisely as the data allow
  (``line_changed``, ``lines_reordered``, ``line_deleted``, ``line_inserted``,
  ``file_truncated``, ``lines_appended``, ``file_missing``) with the first line that differs;
- the ``.p7s`` verifies over the manifest bytes, its certificate is one of the key store's and
  was the current key when the day was stamped (else ``unknown_key`` / ``key_not_current``);
- the ``.tsr`` (or, in stamp mode daily, the stamped list that holds the manifest's SHA-256)
  verifies against the TSA certificates and its time is after the last line (``stamp_invalid``,
  ``stamp_too_early``); a stamp not there yet makes the day PENDING, not FAIL.

Across days, each manifest's ``previous_manifest_sha256`` must be a manifest of the same device
with the previous sequence number (``day_removed`` when it is gone, ``manifest_chain_broken``
otherwise) — or a manifest a valid deletion receipt says a retention purge removed (noted as
"previous day purged under receipt <name>"; ``receipt_invalid`` when that receipt does not
verify; see ``receipt.py``).

Verdicts: ``OK``, ``FAIL`` (with named reasons), ``PENDING`` (stamp awaited), ``UNSEALED`` (a
part has no manifest yet). Devices are verified in parallel processes.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from logmaster.archive import manifest as mf
from logmaster.archive.manifest import Part
from logmaster.archive.reader import resolve
from logmaster.archive.receipt import Purged, receipts_for
from logmaster.archive.verify import verify_day

if TYPE_CHECKING:
    from logmaster.config import Settings

OK, FAIL, PENDING, UNSEALED = "OK", "FAIL", "PENDING", "UNSEALED"
_DAY_GLOB = "[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]*"


@dataclass
class Finding:
    code: str
    message: str
    part: int = 0
    line: int | None = None


@dataclass
class DayVerdict:
    """The verdict of one device-day, with every reason; ``to_json`` for the API and --json."""

    device: str
    day: dt.date
    verdict: str = OK
    reasons: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parts: int = 0
    lines: int = 0
    declared_silence: bool = False

    def fail(self, code: str, message: str, part: int = 0, line: int | None = None) -> None:
        self.reasons.append(Finding(code, message, part, line))

    unsealed: bool = False
    pending: bool = False

    def finish(self) -> None:
        if self.reasons:
            self.verdict = FAIL
        elif self.unsealed:
            self.verdict = UNSEALED
        elif self.pending:
            self.verdict = PENDING
        else:
            self.verdict = OK

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["day"] = self.day.isoformat()
        return body


# -- what the verification trusts ----------------------------------------------------------


@dataclass
class Trust:
    """Certificates (PEM, so it crosses process boundaries) and settings a verification needs."""

    signing: list[tuple[bytes, float | None, float | None]]  # (PEM, active from, retired at)
    tsa: bytes  # PEM of every trusted TSA certificate
    tsa_chain_required: bool
    gap_s: float


def trust_from(settings: Settings) -> Trust:
    from logmaster.archive.keys import KeyStore

    store = KeyStore(settings.data_dir / "keys")
    signing: list[tuple[bytes, float | None, float | None]] = []
    retired = store.retired()  # oldest first
    activated: float | None = None
    for path, certs in retired:
        retired_at = _retired_at(path)
        signing.append((certs[0].public_bytes(serialization.Encoding.PEM), activated, retired_at))
        activated = retired_at
    current = store.current_certificate()
    if current is not None:
        signing.append((current.public_bytes(serialization.Encoding.PEM), activated, None))
    tsa_certs: list[x509.Certificate] = []
    builtin = settings.data_dir / "tsa" / "ca-cert.pem"
    if builtin.exists():
        tsa_certs += x509.load_pem_x509_certificates(builtin.read_bytes())
    every_server_has_ca = True
    for server in settings.tsa.servers:
        if server.ca_file is None:
            every_server_has_ca = False
        elif server.ca_file.exists():
            tsa_certs += x509.load_pem_x509_certificates(server.ca_file.read_bytes())
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in tsa_certs)
    return Trust(signing, pem, every_server_has_ca, float(settings.seal.silence_threshold_s))


def _retired_at(path: Path) -> float | None:
    try:
        stamp = path.name.split("-")[0]
        when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return when.timestamp()


@functools.cache
def _signing_periods(
    signing: tuple[tuple[bytes, float | None, float | None], ...],
) -> dict[bytes, tuple[float | None, float | None]]:
    """Certificate SHA-256 -> (active from, retired at), parsed once per process."""
    return {
        x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()): (start, end)
        for pem, start, end in signing
    }


# -- CMS signatures --------------------------------------------------------------------------


class SignatureError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_signature(
    p7s: bytes, data: bytes, trust: Trust, at: dt.datetime | None, named: str | None
) -> x509.Certificate:
    """Verify a detached CMS signature over ``data``; raise SignatureError naming the fault.

    ``at`` is the trusted time of the seal (the stamp's time): the signing key must have been
    the current one then. ``named`` is the certificate SHA-256 the manifest itself states.
    """
    from asn1crypto import cms

    from logmaster.archive.tsa_check import _load_certs, _matches_sid, _verify_signature

    try:
        info = cms.ContentInfo.load(p7s, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError("not CMS SignedData")
        signed = info["content"]
        if signed["encap_content_info"]["content"].native is not None:
            raise ValueError("the signature embeds content; a detached signature is expected")
        (si,) = signed["signer_infos"]
        attrs = {a["type"].native: a["values"] for a in si["signed_attrs"]}
        digest_name = si["digest_algorithm"]["algorithm"].native
        certs = _load_certs(signed)
    except (ValueError, TypeError, KeyError) as exc:
        raise SignatureError("signature_invalid", f"unreadable .p7s: {exc}") from exc
    if digest_name not in ("sha256", "sha384", "sha512"):
        raise SignatureError("signature_invalid", f"digest {digest_name} is too weak")
    digest = attrs.get("message_digest")
    if digest is None or hashlib.new(digest_name, data).digest() != digest[0].native:
        raise SignatureError(
            "signature_invalid", "the signature is over other bytes than this manifest"
        )
    signer = next((c for c in certs if _matches_sid(c, si["sid"])), None)
    if signer is None:
        raise SignatureError(
            "signature_invalid", "the .p7s does not carry its signer's certificate"
        )
    signed_bytes = b"\x31" + si["signed_attrs"].dump()[1:]
    try:
        _verify_signature(
            signer, si["signature_algorithm"], digest_name, si["signature"].native, signed_bytes
        )
    except Exception as exc:
        raise SignatureError("signature_invalid", "the signature does not verify") from exc
    fp = signer.fingerprint(hashes.SHA256())
    match = _signing_periods(tuple(trust.signing)).get(fp)
    if match is None:
        raise SignatureError(
            "unknown_key",
            f"signed by {signer.subject.rfc4514_string()}, a key that is not in the key store",
        )
    if at is not None:
        start, end = match
        t = at.timestamp()
        if (start is not None and t < start) or (end is not None and t >= end):
            raise SignatureError(
                "key_not_current",
                f"signed with a key that was not the current signing key at "
                f"{at:%d.%m.%Y %H:%M:%S} UTC (re-signed after a key rotation?)",
            )
    if named is not None and named != fp.hex():
        raise SignatureError(
            "signer_mismatch", "signed with another key than the one the manifest names"
        )
    return signer


# -- one part ------------------------------------------------------------------------------


def _classify(
    v: DayVerdict, part: int, man: dict[str, Any], scan: mf.Scan, chain: list[str]
) -> None:
    """Name what changed in a day file whose hash differs from its manifest."""
    lines, want = scan.lines, int(man.get("lines") or 0)
    first = None
    for text in chain:
        if text.startswith("line "):
            first = int(text.split()[1])
    where = f" (first difference at line {first})" if first else ""
    if lines == want and scan.lines_sum == man.get("lines_sum"):
        v.fail("lines_reordered", f"the same lines in another order{where}", part, first)
    elif lines == want:
        v.fail("line_changed", f"a line was changed{where}", part, first)
    elif lines < want and (first is None or first > lines):
        v.fail("file_truncated", f"the file ends after line {lines} of {want}", part, lines + 1)
    elif lines < want:
        v.fail("line_deleted", f"{want - lines} line(s) deleted{where}", part, first)
    elif first is None or first > want:
        v.fail("lines_appended", f"{lines - want} line(s) added after line {want}", part, want + 1)
    else:
        v.fail("line_inserted", f"{lines - want} line(s) inserted{where}", part, first)


def _verify_part(
    v: DayVerdict, part: Part, trust: Trust, tsa_certs: list[x509.Certificate]
) -> tuple[bool, dict[str, Any] | None, str | None]:
    """Check one sealed part; return (stamp pending, manifest, manifest sha256)."""
    from logmaster.archive.verify import chain_problems

    try:
        data, man = mf.load(part.manifest)
    except (OSError, ValueError) as exc:
        v.fail("manifest_unreadable", str(exc), part.index)
        return False, None, None
    sha = mf.sha256_hex(data)
    if (man.get("device"), man.get("date"), man.get("part")) != (
        part.device,
        part.day.isoformat(),
        part.index,
    ):
        v.fail(
            "manifest_swapped",
            f"{part.manifest.name} is the manifest of {man.get('device')} {man.get('date')} "
            f"part {man.get('part')}, not of {part.label}",
            part.index,
        )
        return False, man, sha
    actual = resolve(part.log)
    if man.get("declared_silence"):
        v.declared_silence = True
        if actual is not None:
            v.fail("silence_contradicted", "a day file exists for a day sealed as silent")
    elif actual is None:
        v.fail("file_missing", f"{part.log.name} (nor a .zst/.gz of it) is missing", part.index)
    else:
        scan = mf.scan_file(actual, part.device, part.day, gap_s=trust.gap_s, want_tags=True)
        v.lines += scan.lines
        chain = chain_problems(part.device, part.day, part.log, part.chain, scan)
        if scan.sha256 != man.get("sha256") or scan.size != man.get("size"):
            _classify(v, part.index, man, scan, chain)
        if scan.merkle_root != man.get("merkle_root"):
            v.fail("merkle_root", "the Merkle root of the lines is not the sealed one", part.index)
        if scan.sha256 == man.get("sha256") and scan.chain_head != man.get("chain_head"):
            v.fail("chain", "the chain head is not the sealed one", part.index)
        for text in chain:
            v.fail("chain", text, part.index)
    # The stamp first: its time is the trusted time the signature key is judged at.
    pending, stamp_time = _check_stamp(v, part, data, sha, man, tsa_certs, trust)
    if not part.p7s.exists():
        v.fail("signature_missing", f"{part.p7s.name} is missing", part.index)
    else:
        named = (man.get("signing_key") or {}).get("certificate_sha256")
        try:
            check_signature(part.p7s.read_bytes(), data, trust, stamp_time, named)
        except SignatureError as exc:
            v.fail(exc.code, str(exc), part.index)
    return pending, man, sha


@dataclass
class _Stamped:
    """A checked stamp (cached per file: a daily list serves every manifest it lists)."""

    pending: bool
    gen_time: dt.datetime | None = None
    error: str | None = None


@dataclass
class _DailyList:
    entries: dict[str, str]  # manifest path -> sha256
    signature_error: str | None
    data: bytes


CACHE_ENTRIES = 64
_STAMPS: dict[tuple[str, int, int, str], _Stamped] = {}
_LISTS: dict[tuple[str, int, int], _DailyList] = {}


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def _stamp_of(
    tsr: Path,
    stamped: bytes,
    tsa_certs: list[x509.Certificate],
    trust: Trust,
    cache: bool = True,
) -> _Stamped:
    from logmaster.archive.tsa import TsaError, check_response

    try:
        key = (*_file_key(tsr), hashlib.sha256(stamped).hexdigest())
    except FileNotFoundError:
        return _Stamped(pending=True)
    cached = _STAMPS.get(key)
    if cached is None:
        try:
            check = check_response(
                tsr.read_bytes(), stamped, tsa_certs, require_chain=trust.tsa_chain_required
            )
            cached = _Stamped(False, check.gen_time)
        except TsaError as exc:
            cached = _Stamped(False, None, f"{tsr.name}: {exc.detail}")
        if cache:
            if len(_STAMPS) >= CACHE_ENTRIES:  # a long-lived caller (the API) stays bounded
                _STAMPS.clear()
            _STAMPS[key] = cached
    return cached


def _daily_list(lst: Path, trust: Trust, tsa_certs: list[x509.Certificate]) -> _DailyList | None:
    from logmaster.archive.seal import _with

    try:
        key = _file_key(lst)
    except FileNotFoundError:
        return None
    cached = _LISTS.get(key)
    if cached is None:
        try:
            listed = lst.read_bytes()
            entries = {str(e["path"]): str(e["sha256"]) for e in json.loads(listed)["manifests"]}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        error = None
        try:
            check_signature(_with(lst, ".p7s").read_bytes(), listed, trust, None, None)
        except (OSError, SignatureError) as exc:
            error = f"{lst.name}: {exc}"
        if len(_LISTS) >= CACHE_ENTRIES:
            _LISTS.clear()
        cached = _LISTS[key] = _DailyList(entries, error, listed)
    return cached


def _check_stamp(
    v: DayVerdict,
    part: Part,
    data: bytes,
    sha: str,
    man: dict[str, Any],
    tsa_certs: list[x509.Certificate],
    trust: Trust,
) -> tuple[bool, dt.datetime | None]:
    """(pending, the stamp's time)."""
    from logmaster.archive.seal import daily_lists

    mode = (man.get("stamp") or {}).get("mode", "manifest")
    if mode == "daily":
        rel = part.manifest.relative_to(part.root).as_posix()
        for lst in daily_lists(part.root, part.day):
            info = _daily_list(lst, trust, tsa_certs)
            if info is not None and info.entries.get(rel) == sha:
                if info.signature_error:
                    v.fail("list_signature", info.signature_error, part.index)
                stamp = _stamp_of(Path(f"{lst}.tsr"), info.data, tsa_certs, trust)
                break
        else:
            v.notes.append(f"{part.label}: not in a stamped daily list yet")
            return True, None
    else:
        stamp = _stamp_of(part.tsr, data, tsa_certs, trust, cache=False)
    if stamp.pending:
        v.notes.append(f"{part.label}: stamp pending")
        return True, None
    if stamp.error or stamp.gen_time is None:
        v.fail("stamp_invalid", stamp.error or "no time in the stamp", part.index)
        return False, None
    last = man.get("last_received")
    if last and stamp.gen_time < dt.datetime.fromisoformat(last):
        v.fail(
            "stamp_too_early",
            f"the stamp's time {stamp.gen_time:%d.%m.%Y %H:%M:%S} UTC is before the last line",
            part.index,
        )
    return False, stamp.gen_time


# -- devices -------------------------------------------------------------------------------


def device_days(
    root: Path, device: str, first: dt.date | None, last: dt.date | None
) -> list[dt.date]:
    days: set[dt.date] = set()
    for path in (root / device).glob(_DAY_GLOB):
        try:
            day = dt.date(int(path.parent.parent.name), int(path.parent.name), int(path.name[:2]))
        except ValueError:
            continue
        if (first is None or day >= first) and (last is None or day <= last):
            days.add(day)
    return sorted(days)


def _head_manifest(root: Path, device: str) -> Path | None:
    """The device's newest manifest as the sealer recorded it (removing it leaves a trace)."""
    from logmaster.archive.seal import HEAD_FILE

    try:
        rel = json.loads((root / device / HEAD_FILE).read_bytes())["manifest"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return root / str(rel)


def _older_manifests(root: Path, device: str, before: dt.date) -> Iterator[tuple[str, int]]:
    """(sha256, sequence) of the device's manifests before ``before``, newest day first."""
    for path in sorted((root / device).glob(_DAY_GLOB + ".manifest.json"), reverse=True):
        try:
            day = dt.date(int(path.parent.parent.name), int(path.parent.name), int(path.name[:2]))
        except ValueError:
            continue
        if day >= before:
            continue
        try:
            data, obj = mf.load(path)
        except (OSError, ValueError):
            continue
        yield mf.sha256_hex(data), int(obj.get("sequence", 0))


def verify_device(
    root: Path,
    device: str,
    first: dt.date | None,
    last: dt.date | None,
    trust: Trust,
) -> list[DayVerdict]:
    """Verdicts of the device's days in [first, last] (every day when None)."""
    tsa_certs = x509.load_pem_x509_certificates(trust.tsa) if trust.tsa else []
    verdicts: list[DayVerdict] = []
    sealed: dict[str, tuple[int, DayVerdict, int]] = {}  # sha -> (sequence, verdict, part)
    links: list[tuple[DayVerdict, int, int, str | None, bool]] = []
    head = _head_manifest(root, device)
    for day in device_days(root, device, first, last):
        v = DayVerdict(device, day)
        for part in mf.parts(root, device, day):
            v.parts += 1
            if not part.manifest.exists():
                # The stamp is written after the manifest: a .tsr without it means removal.
                if part.tsr.exists() or head == part.manifest:
                    v.fail("manifest_missing", f"{part.manifest.name} is missing", part.index)
                else:
                    v.unsealed = True
                    v.notes.append(f"{part.label}: not sealed yet")
                    # Not sealed, but its hash chain already protects it: check that.
                    report = verify_day(device, day, part.log)
                    v.lines += report.lines
                    for text in report.problems:
                        v.fail("chain", text, part.index, report.first_bad_line)
                continue
            was_pending, man, sha = _verify_part(v, part, trust, tsa_certs)
            v.pending = v.pending or was_pending
            if man is not None and sha is not None:
                seq = int(man.get("sequence", 0))
                sealed[sha] = (seq, v, part.index)
                links.append(
                    (
                        v,
                        part.index,
                        seq,
                        man.get("previous_manifest_sha256"),
                        bool(man.get("genesis")),
                    )
                )
        verdicts.append(v)
    if head is not None and not head.exists():
        try:
            gone: dt.date | None = dt.date(
                int(head.parent.parent.name), int(head.parent.name), int(head.name[:2])
            )
        except ValueError:
            gone = None
        listed = {v.day for v in verdicts}
        in_range = gone is not None and (first or gone) <= gone <= (last or gone)
        if gone is not None and gone not in listed and in_range:
            purged = receipts_for(root, trust, tsa_certs).by_path(
                head.relative_to(root).as_posix(), device
            )
            if purged is None or not purged.valid:
                v = DayVerdict(device, gone)
                if purged is None:
                    v.fail("day_removed", f"the device's newest sealed day ({head.name}) is gone")
                else:
                    v.fail(
                        "receipt_invalid",
                        f"the device's newest sealed day ({head.name}) is gone; deletion "
                        f"receipt {purged.receipt} lists it but does not verify: {purged.error}",
                    )
                verdicts.append(v)
    verdicts.sort(key=lambda v: v.day)
    _check_links(root, device, sealed, links, trust, tsa_certs)
    for v in verdicts:
        v.finish()
    return verdicts


def _check_links(
    root: Path,
    device: str,
    sealed: dict[str, tuple[int, DayVerdict, int]],
    links: list[tuple[DayVerdict, int, int, str | None, bool]],
    trust: Trust,
    tsa_certs: list[x509.Certificate],
) -> None:
    older: dict[str, int] | None = None
    for v, part, seq, previous, genesis in links:
        if genesis or previous is None:
            if seq != 1 or previous is not None or not genesis:
                v.fail("manifest_chain_broken", "a genesis manifest that is not the first", part)
            continue
        found = sealed.get(previous)
        prev_seq = found[0] if found else None
        if prev_seq is None:
            if older is None:
                older = dict(_older_manifests(root, device, v.day + dt.timedelta(days=1)))
            prev_seq = older.get(previous)
        if prev_seq is None:
            purged = receipts_for(root, trust, tsa_certs).by_sha(previous, device)
            if purged is not None:
                _purged_link(v, part, seq, purged)
                continue
            v.fail(
                "day_removed",
                f"the previous manifest (sequence {seq - 1}) is missing: a sealed day or "
                "supplement before this one was removed or replaced",
                part,
            )
        elif prev_seq != seq - 1:
            v.fail(
                "manifest_chain_broken",
                f"the previous manifest has sequence {prev_seq}, not {seq - 1}",
                part,
            )


def _purged_link(v: DayVerdict, part: int, seq: int, purged: Purged) -> None:
    """The previous manifest is gone, and a deletion receipt says a purge removed it."""
    where = f"{purged.device} {purged.day:%d.%m.%Y}" + (
        f" supplement {purged.part}" if purged.part else ""
    )
    if not purged.valid:
        v.fail(
            "receipt_invalid",
            f"the previous manifest (sequence {seq - 1}, {where}) is gone; deletion receipt "
            f"{purged.receipt} lists it but does not verify: {purged.error}",
            part,
        )
    elif purged.sequence != seq - 1:
        v.fail(
            "manifest_chain_broken",
            f"the previous manifest was purged under receipt {purged.receipt} with sequence "
            f"{purged.sequence}, not {seq - 1}",
            part,
        )
    else:
        v.notes.append(f"previous day purged under receipt {purged.receipt} ({where})")
        if purged.pending:
            v.pending = True
            v.notes.append(f"deletion receipt {purged.receipt}: stamp pending")


def _device_job(args: tuple[Path, str, dt.date | None, dt.date | None, Trust]) -> list[DayVerdict]:
    return verify_device(*args)


def verify_days(
    settings: Settings,
    device: str | None = None,
    first: dt.date | None = None,
    last: dt.date | None = None,
    workers: int | None = None,
    *,
    devices: Sequence[str] | None = None,
) -> list[DayVerdict]:
    """Verdicts of every device-day in range, devices in parallel processes.

    ``device`` names one device, ``devices`` several (the API: the caller's scope); neither:
    every device of the archive.
    """
    from logmaster.archive.seal import archive_devices

    root = settings.archive_dir
    trust = trust_from(settings)
    _STAMPS.clear()  # files may have changed since the last verification in this process
    _LISTS.clear()
    if devices is None:
        devices = [device] if device else archive_devices(root)
    jobs = [(root, d, first, last, trust) for d in devices]
    n = workers if workers is not None else settings.seal.workers
    if n <= 1 or len(jobs) <= 1:
        results = [_device_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_device_job, jobs, chunksize=max(1, len(jobs) // (n * 8))))
    return [v for group in results for v in group]
