"""Evidence bundles: a ZIP a court expert verifies with ``sha256sum`` and ``openssl`` alone.

``export_days(settings, device, first, last, out, query=...)`` writes::

    bundle.json                 who exported, when, what (query), which files, LogMaster version
    VERIFY.md                   how to check it, Turkish and English, with the exact commands
    verify.sh                   the check (POSIX sh: sha256sum + openssl), per-day OK/FAIL
    verify_proof.sh             the check of one Merkle inclusion proof (with a query)
    manifests.txt               the manifests verify.sh walks ("day" or "link" + path)
    SHA256SUMS                  sha256sum of every other file
    certs/operator-chain.pem    every signing certificate of the key store (current and retired)
    certs/tsa-ca.pem            the trusted TSA certificates (built-in CA, configured ca_files)
    certs/tsa-untrusted.pem     certificates the tokens carry (intermediates for openssl)
    archive/<device>/<YYYY>/<MM>/<DD>.log   the day file, uncompressed (the manifest's SHA-256
                                            is over these bytes), .log.chain, .manifest.json,
                                            .manifest.json.p7s, .manifest.json.tsr; supplements
    archive/_daily/...          stamped daily lists, when the stamp mode is ``daily``
    extract/lines.txt           with a query: the matching lines; extract/index.tsv where they
    extract/proofs/<device>/<day[.sN]>/<N>/  are; per line: line, path, manifest, proof.json

Only sealed parts go in (an unsealed part cannot be verified: it is listed as not included). A
gap in a device's manifest sequence inside the exported range (a supplement sealed after later
days) is filled with "link" manifests — manifest, signature and stamp without the day file — so
the day-to-day chain verifies without holes.

``bundle_attribution.export_attribution`` writes the same layout for an attribution answer,
and ``extract.py`` makes the extract and its Merkle proofs.

Stamps of the built-in TSA (or of a TSA configured as not accredited) are labelled "not from an
accredited TSA" in ``VERIFY.md``, ``bundle.json`` and each line of ``verify.sh``'s output.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import socket
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from logmaster import __version__
from logmaster.archive import manifest as mf
from logmaster.archive.bundle_docs import verify_markdown
from logmaster.archive.bundle_scripts import VERIFY_PROOF_SH, VERIFY_SH
from logmaster.archive.extract import Extracted, ExtractError, prove, search_offsets
from logmaster.archive.manifest import Part
from logmaster.archive.reader import open_day

if TYPE_CHECKING:
    from logmaster.config import Settings

FORMAT = "logmaster-evidence-bundle/1"
CHUNK = 1 << 20
# Measured on a 71 MB day (busy machine): deflate level 6 took 7.6 s, level 1 5.9 s for a ZIP
# 3 % larger (8.6 MB); syslog text compresses well at any level.
ZIP_LEVEL = 1
MAX_EXTRACT_LINES = 100_000
NOT_ACCREDITED = (
    "not from an accredited TSA: the built-in TSA (or a TSA configured as not accredited) "
    "stamped it; it proves the time only as far as this server's clock is trusted"
)
NOT_ACCREDITED_TR = (
    "akredite bir zaman damgası sağlayıcısından değildir: yerleşik TSA (ya da akredite olmayan "
    "olarak tanımlı bir TSA) damgalamıştır; zamanı yalnızca bu sunucunun saatine güvenildiği "
    "ölçüde kanıtlar"
)

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


class BundleError(Exception):
    """A bundle that cannot be made; the message says why and what to do."""


# -- the ZIP ------------------------------------------------------------------------------


@dataclass
class BundleFile:
    name: str
    size: int
    sha256: str


class _Zip:
    """A ZIP being written, remembering each member's size and SHA-256 (for SHA256SUMS)."""

    def __init__(self, out: IO[bytes], when: dt.datetime) -> None:
        self.zf = zipfile.ZipFile(
            out, "w", zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=ZIP_LEVEL
        )
        self.stamp = when.astimezone(dt.UTC).timetuple()[:6]
        self.files: dict[str, BundleFile] = {}

    def _info(self, name: str, mode: int) -> zipfile.ZipInfo:
        if name in self.files:
            raise BundleError(f"{name} twice in one bundle")
        info = zipfile.ZipInfo(name, self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        # A ZipInfo made by hand does not take the ZipFile's level (Python 3.11: a private
        # attribute, ``compress_level`` from 3.13).
        info._compresslevel = ZIP_LEVEL  # type: ignore[attr-defined]
        info.external_attr = (0o100000 | mode) << 16
        return info

    def add_bytes(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.zf.writestr(self._info(name, mode), data)
        self.files[name] = BundleFile(name, len(data), hashlib.sha256(data).hexdigest())

    def add_stream(self, name: str, src: IO[bytes], on_bytes: Callable[[int], None]) -> str:
        digest = hashlib.sha256()
        size = 0
        with self.zf.open(self._info(name, 0o644), "w", force_zip64=True) as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
                on_bytes(len(chunk))
        self.files[name] = BundleFile(name, size, digest.hexdigest())
        return digest.hexdigest()

    def close(self) -> None:
        self.zf.close()

    def abort(self) -> None:
        """Close after a failure (the output is then an incomplete ZIP the caller discards)."""
        with contextlib.suppress(OSError, ValueError):
            self.zf.close()


# -- what goes in -------------------------------------------------------------------------


@dataclass
class Entry:
    """A sealed part in the bundle."""

    part: Part
    kind: str  # day | link
    manifest: dict[str, Any]
    manifest_sha256: str
    stamp_state: str  # stamped | daily_list | pending
    daily_list: Path | None = None

    @property
    def summary(self) -> dict[str, Any]:
        m = self.manifest
        stamp = m.get("stamp") or {}
        return {
            "device": self.part.device,
            "date": self.part.day.isoformat(),
            "part": self.part.index,
            "kind": self.kind,
            "manifest": "archive/" + _rel(self.part, self.part.manifest),
            "manifest_sha256": self.manifest_sha256,
            "sequence": m.get("sequence"),
            "file": None if m.get("file") is None else "archive/" + m["file"]["path"],
            "lines": m.get("lines"),
            "sha256": m.get("sha256"),
            "declared_silence": bool(m.get("declared_silence")),
            "stamp": {
                "tsa": stamp.get("tsa"),
                "accredited": bool(stamp.get("accredited")),
                "mode": stamp.get("mode"),
                "state": self.stamp_state,
            },
        }


def _rel(part: Part, path: Path) -> str:
    return path.relative_to(part.root).as_posix()


def entry_of(part: Part, kind: str) -> Entry:
    from logmaster.archive.seal import daily_lists

    data, obj = mf.load(part.manifest)
    sha = mf.sha256_hex(data)
    if part.tsr.exists():
        return Entry(part, kind, obj, sha, "stamped")
    for lst in daily_lists(part.root, part.day):
        try:
            body = json.loads(lst.read_bytes())
        except (OSError, ValueError):
            continue
        if any(e.get("sha256") == sha for e in body.get("manifests", [])):
            stamped = lst.with_name(lst.name + ".tsr").exists()
            return Entry(part, kind, obj, sha, "daily_list" if stamped else "pending", lst)
    return Entry(part, kind, obj, sha, "pending")


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


def select(
    root: Path, device: str, first: dt.date, last: dt.date
) -> tuple[list[Entry], list[dict[str, Any]]]:
    """The sealed parts of the range (and chain links), and what is left out with why."""
    entries: list[Entry] = []
    left_out: list[dict[str, Any]] = []
    for day in _days(first, last):
        for part in mf.parts(root, device, day):
            if not part.manifest.exists():
                left_out.append(
                    {
                        "device": device,
                        "date": day.isoformat(),
                        "part": part.index,
                        "reason": "not sealed yet: it cannot be verified / henüz mühürlenmedi",
                    }
                )
                continue
            entries.append(entry_of(part, "day"))
    return entries + links(root, device, entries), left_out


def links(root: Path, device: str, entries: list[Entry]) -> list[Entry]:
    """Manifests of the device whose sequence falls between the included ones but are not."""
    mine = [e for e in entries if e.part.device == device]
    seqs = {int(e.manifest.get("sequence", 0)) for e in mine}
    if len(seqs) < 2:
        return []
    lo, hi = min(seqs), max(seqs)
    if hi - lo + 1 == len(seqs):
        return []
    out = []
    for path in sorted((root / device).glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.manifest.json")):
        try:
            _data, obj = mf.load(path)
            seq = int(obj.get("sequence", 0))
            day = dt.date.fromisoformat(str(obj["date"]))
            part = Part(root, device, day, int(obj.get("part", 0)))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if lo < seq < hi and seq not in seqs and part.manifest == path:
            out.append(entry_of(part, "link"))
            seqs.add(seq)
    return out


# -- writing ------------------------------------------------------------------------------


@dataclass
class Summary:
    """What an export wrote."""

    files: list[BundleFile]
    entries: list[dict[str, Any]]
    left_out: list[dict[str, Any]]
    extracted: int
    bytes_in: int
    not_accredited: bool
    pending: int
    bundle: dict[str, Any] = field(default_factory=dict)


def _certificates(settings: Settings, entries: list[Entry]) -> dict[str, bytes]:
    from logmaster.archive.keys import KeyStore
    from logmaster.archive.tsa import pem, tsr_certificates
    from logmaster.archive.verdict import trust_from

    operator = pem(KeyStore(settings.data_dir / "keys").chains())
    if not operator:
        raise BundleError(
            f"no signing certificate in {settings.data_dir / 'keys'}: the seals cannot be "
            "checked without it (wrong --data-dir?)"
        )
    carried: dict[bytes, bytes] = {}
    for e in entries:
        for tsr in (
            e.part.tsr,
            e.daily_list.with_name(e.daily_list.name + ".tsr") if e.daily_list else None,
        ):
            if tsr is not None and tsr.exists():
                for cert in tsr_certificates(tsr.read_bytes()):
                    carried.setdefault(cert.fingerprint(_sha256()), pem([cert]))
    tsa_ca = trust_from(settings).tsa
    return {
        "certs/operator-chain.pem": operator,
        "certs/tsa-ca.pem": tsa_ca,
        # Never empty: VERIFY.md's commands name it (a root in the untrusted pool is harmless).
        "certs/tsa-untrusted.pem": b"".join(carried.values()) or tsa_ca,
    }


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


class BundleWriter:
    """Fills a bundle: parts, extracts, certificates, scripts, then bundle.json and SHA256SUMS."""

    def __init__(self, settings: Settings, out: IO[bytes], progress: Progress | None) -> None:
        self.settings = settings
        self.root = settings.archive_dir
        self.when = dt.datetime.now(dt.UTC)
        self.zip = _Zip(out, self.when)
        self.progress = progress
        self.done = 0
        self.total = 0

    def _tick(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)

    def add_entries(self, entries: list[Entry]) -> None:
        files: list[tuple[str, Path, bool]] = []  # (name, path, is a day file)
        lists: set[Path] = set()
        for e in entries:
            p = e.part
            if e.kind == "day" and e.manifest.get("file") is not None:
                files.append(("archive/" + _rel(p, p.log), p.log, True))
                if p.chain.exists():
                    files.append(("archive/" + _rel(p, p.chain), p.chain, False))
            for path in (p.manifest, p.p7s, p.tsr):
                if path.exists():
                    files.append(("archive/" + _rel(p, path), path, False))
            if e.daily_list is not None:
                lists.add(e.daily_list)
        for lst in sorted(lists):
            for path in (lst, lst.with_name(lst.name + ".p7s"), lst.with_name(lst.name + ".tsr")):
                if path.exists():
                    files.append(("archive/" + path.relative_to(self.root).as_posix(), path, False))
        from logmaster.archive.reader import resolve

        for _name, path, day in files:
            actual = resolve(path) if day else path
            self.total += actual.stat().st_size if actual is not None else 0
        for name, path, day in files:
            with open_day(path) if day else path.open("rb") as src:
                sha = self.zip.add_stream(name, src, self._tick)
            if day:
                want = next(e.manifest["sha256"] for e in entries if e.part.log == path)
                if sha != want:
                    raise BundleError(
                        f"{name} does not match its manifest (SHA-256 {sha}, sealed {want}): "
                        "the archive was altered; run logmaster verify and keep the disk as is"
                    )

    def add_extracts(self, extracted: list[Extracted]) -> None:
        if not extracted:
            return
        lines = b"".join(x.line + b"\n" for x in extracted)
        index = "device\tdate\tpart\tfile\tline\toffset\tproof\n" + "".join(
            f"{x.part.device}\t{x.part.day.isoformat()}\t{x.part.index}\t"
            f"archive/{_rel(x.part, x.part.log)}\t{x.number}\t{x.offset}\t{x.proof_dir}\n"
            for x in extracted
        )
        self.zip.add_bytes("extract/lines.txt", lines)
        self.zip.add_bytes("extract/index.tsv", index.encode())
        for x in extracted:
            d = x.proof_dir
            path = "".join(f"{p['side']} {p['hash']}\n" for p in x.proof["path"])
            self.zip.add_bytes(f"{d}/line", x.line)
            self.zip.add_bytes(f"{d}/path", path.encode())
            self.zip.add_bytes(
                f"{d}/manifest", f"archive/{_rel(x.part, x.part.manifest)}\n".encode()
            )
            self.zip.add_bytes(f"{d}/proof.json", json_bytes(x.proof))

    def finish(
        self, entries: list[Entry], about: dict[str, Any], docs: dict[str, str]
    ) -> dict[str, Any]:
        for name, data in _certificates(self.settings, entries).items():
            self.zip.add_bytes(name, data)
        listing = "".join(
            f"{e.kind} archive/{_rel(e.part, e.part.manifest)}\n"
            for e in sorted(entries, key=lambda e: (e.part.device, e.part.day, e.part.index))
        )
        self.zip.add_bytes("manifests.txt", listing.encode())
        self.zip.add_bytes("verify.sh", VERIFY_SH.encode(), 0o755)
        self.zip.add_bytes("verify_proof.sh", VERIFY_PROOF_SH.encode(), 0o755)
        for name, text in docs.items():
            self.zip.add_bytes(name, text.encode())
        body = {
            "format": FORMAT,
            "logmaster_version": __version__,
            "exported_at": self.when.isoformat(timespec="seconds"),
            "node": socket.gethostname(),
            **about,
            "files": [asdict(f) for f in sorted(self.zip.files.values(), key=lambda f: f.name)],
        }
        self.zip.add_bytes("bundle.json", json_bytes(body))
        sums = "".join(
            f"{f.sha256}  {f.name}\n" for f in sorted(self.zip.files.values(), key=lambda f: f.name)
        )
        self.zip.add_bytes("SHA256SUMS", sums.encode())
        self.zip.close()
        return body


def json_bytes(obj: Any) -> bytes:
    return (
        json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True, default=str) + "\n"
    ).encode()


def stamp_summary(entries: list[Entry]) -> dict[str, Any]:
    unaccredited = sorted(
        {
            str((e.manifest.get("stamp") or {}).get("tsa"))
            for e in entries
            if not (e.manifest.get("stamp") or {}).get("accredited")
        }
    )
    return {
        "accredited": not unaccredited,
        "not_accredited_tsas": unaccredited,
        "notice": f"{NOT_ACCREDITED} ({', '.join(unaccredited)})" if unaccredited else "",
        "notice_tr": f"{NOT_ACCREDITED_TR} ({', '.join(unaccredited)})" if unaccredited else "",
        "pending": [e.summary["manifest"] for e in entries if e.stamp_state == "pending"],
    }


def export_days(
    settings: Settings,
    device: str,
    first: dt.date,
    last: dt.date,
    out: IO[bytes],
    *,
    query: str | None = None,
    exported_by: str = "",
    progress: Progress | None = None,
) -> Summary:
    """Write the evidence bundle of ``device`` for the days ``first`` .. ``last`` to ``out``."""
    from zoneinfo import ZoneInfo

    from logmaster.archive.seal import device_infos

    if first > last:
        raise BundleError(f"--from {first} is after --to {last}")
    root = settings.archive_dir
    info = device_infos(settings).get(device)
    if info is None and not (root / device).is_dir():
        raise BundleError(f"no device {device!r} in the registry or the archive")
    zone = info.zone if info is not None else ZoneInfo(settings.devices.default_timezone)
    entries, left_out = select(root, device, first, last)
    if not any(e.kind == "day" for e in entries):
        raise BundleError(
            f"{device} has no sealed day between {first:%d.%m.%Y} and {last:%d.%m.%Y}"
            + (f" ({len(left_out)} not sealed yet: run logmaster seal)" if left_out else "")
        )
    extracted: list[Extracted] = []
    if query:
        try:
            offsets = search_offsets(settings, device, first, last, query, zone)
            for e in entries:
                if e.kind == "day" and e.manifest.get("file") is not None:
                    wanted = offsets.pop(e.part.relative, set())
                    if wanted:
                        extracted += prove(e, wanted)
        except ExtractError as exc:
            raise BundleError(str(exc)) from exc
        for file in sorted(offsets):
            left_out.append({"file": file, "reason": "matches in a part that is not sealed yet"})
    writer = BundleWriter(settings, out, progress)
    # Every failure until finish() closed the ZIP aborts it (certificates missing, a day altered,
    # the client gone): a ZipFile left open would otherwise be closed by the garbage collector,
    # after the caller closed ``out``.
    try:
        writer.add_entries(entries)
        writer.add_extracts(extracted)
        stamps = stamp_summary(entries)
        about: dict[str, Any] = {
            "kind": "days",
            "exported_by": exported_by,
            "device": device,
            "timezone": zone.key,
            "from": first.isoformat(),
            "to": last.isoformat(),
            "query": query,
            "extracted_lines": len(extracted),
            "days": [e.summary for e in entries if e.kind == "day"],
            "chain_links": [e.summary for e in entries if e.kind == "link"],
            "not_included": left_out,
            "stamps": stamps,
        }
        docs = {"VERIFY.md": verify_markdown(about)}
        body = writer.finish(entries, about, docs)
    except BaseException:
        writer.zip.abort()
        raise
    return Summary(
        [BundleFile(**f) for f in body["files"]],
        about["days"],
        left_out,
        len(extracted),
        writer.done,
        not stamps["accredited"],
        len(stamps["pending"]),
        body,
    )
