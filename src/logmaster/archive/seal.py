"""Sealing device-days: manifest, CMS signature, RFC 3161 stamp; supplements; daily lists.

``SealRun(settings).seal_day(day)`` seals every part of ``day`` (each device's day file and its
supplements) that has no manifest yet, and declares a silence for every approved device that
sent nothing that day. For one part:

1. ``<stem>.sealing`` is created: the collector's writer sees it (within ``SEAL_CHECK_S``) and
   sends later lines of that day to the next supplement, never into this file;
2. the file is read once (in ``seal.workers`` processes when there is a lot to read): SHA-256,
   Merkle root, chain head and the chain checked against its sidecar, times, gaps, counters;
3. the manifest is built (``previous_manifest_sha256`` = the device's last sealed manifest),
   signed (``.p7s``) and, in stamp mode ``manifest``, stamped (``.tsr``);
4. the marker is removed.

A stamp that fails is queued in ``<data_dir>/seal/pending/`` and retried with a doubling wait
(``retry_initial_s`` .. ``retry_max_s``) by ``stamps.retry_stamps`` (the sealer schedule and
``logmaster seal --retry-stamps``); the seal itself never waits for a TSA. In stamp mode
``daily`` the manifests of one run are listed with their SHA-256 in
``<archive>/_daily/<YYYY>/<MM>/<DD>.list.json`` (later runs for the same date: ``<DD>.2.list.json``
...), which is signed and stamped instead: one paid stamp per day, not per device.

``seal_status.seal_status`` says what state a device-day is in, from the files alone; the
file helpers (``write_atomic`` ...) are in ``files.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from logmaster import __version__
from logmaster.archive import manifest as mf
from logmaster.archive.files import sync_filesystem, tmp_path, write_atomic, write_tmp
from logmaster.archive.manifest import Part
from logmaster.archive.reader import resolve
from logmaster.archive.stamps import stamp_or_queue
from logmaster.archive.writer import _make_dirs

if TYPE_CHECKING:
    from logmaster.archive.keys import Signer
    from logmaster.archive.tsa import Stamper
    from logmaster.config import Settings

log = logging.getLogger(__name__)

SETTLE_S = 3.0  # > writer.SEAL_CHECK_S + a flush: no write starts after the marker plus this
MAX_RESCANS = 5  # a file still growing after this many reads is written by something else
PARALLEL_BYTES = 64 << 20  # below this, reading in this process beats starting workers
DAILY_DIR = "_daily"
HEAD_FILE = "seal-head.json"
LIST_FORMAT = "logmaster-daily-list/1"


class SealError(Exception):
    """A day that cannot be sealed now; the message says why and what to do."""


# -- devices -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    slug: str
    zone: ZoneInfo
    status: str  # approved | pending | rejected | retired | unknown (no registry row)
    created: dt.datetime | None = None
    # The node holding the device's archive (None: no collector received it yet).
    node: str | None = None

    def silence_here(self, node: str) -> bool:
        """Whether this node declares the device's silent days: held here, or by nobody yet."""
        return self.status == "approved" and self.node in (None, node)


def device_infos(settings: Settings) -> dict[str, DeviceInfo]:
    """The registry's devices; empty (with a warning) when the database cannot be read."""
    from sqlalchemy import select

    from logmaster.db import Device, make_engine, sessions

    try:
        engine = make_engine(settings.db_url)
        with sessions(engine)() as s:
            rows = s.execute(
                select(Device.slug, Device.timezone, Device.status, Device.created_at, Device.node)
            ).all()
        engine.dispose()
    except Exception as exc:
        log.warning(
            "Device registry unreadable; sealing the day files found, no declared silences.",
            extra={"error": str(exc)},
        )
        return {}
    out = {}
    for slug, tz, status, created_at, node in rows:
        created = created_at
        if created is not None and created.tzinfo is None:  # SQLite returns naive UTC
            created = created.replace(tzinfo=dt.UTC)
        out[slug] = DeviceInfo(slug, ZoneInfo(tz), status, created, node)
    return out


def day_end(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The local midnight that ends ``day``."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)


def archive_devices(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


# -- results -------------------------------------------------------------------------------


@dataclass
class SealResult:
    device: str
    day: dt.date
    part: int
    state: str  # sealed | stamp_pending | silence | not_over | error
    message: str = ""
    manifest: Path | None = None


@dataclass
class _Work:
    """A part to read, in a worker process."""

    path: Path
    device: str
    day: dt.date
    zone: str
    gap_s: float
    expected_lines: int
    chain: Path


@dataclass
class ScanResult:
    scan: mf.Scan
    chain_problems: list[str] = field(default_factory=list)


def _scan_work(work: _Work) -> ScanResult:
    from logmaster.archive.verify import chain_problems

    scan = mf.scan_file(
        work.path,
        work.device,
        work.day,
        gap_s=work.gap_s,
        zone=ZoneInfo(work.zone),
        want_tags=True,
        expected_lines=work.expected_lines,
    )
    problems = chain_problems(work.device, work.day, work.path, work.chain, scan)
    scan.tags = None  # not needed by the caller; do not ship it between processes
    return ScanResult(scan, problems)


def _recorded_lines(chain_path: Path) -> int:
    from logmaster.archive import chain

    try:
        side = chain.read_sidecar(chain_path)
    except (OSError, chain.SidecarError):
        return 0
    return side.records[-1].lines if side.records else 0


def scan_many(works: list[_Work], workers: int) -> list[ScanResult]:
    """Read parts, in ``workers`` processes when there is enough to read."""
    total = 0
    for w in works:
        actual = resolve(w.path)
        total += actual.stat().st_size if actual is not None else 0
    if workers <= 1 or len(works) <= 1 or total < PARALLEL_BYTES:
        return [_scan_work(w) for w in works]
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_scan_work, works, chunksize=max(1, len(works) // (workers * 8))))


# -- the device's manifest chain -----------------------------------------------------------


def _head_path(root: Path, device: str) -> Path:
    return root / device / HEAD_FILE


def device_head(root: Path, device: str) -> tuple[int, str | None]:
    """(sequence, SHA-256) of the device's last sealed manifest; (0, None) before the first.

    Read from ``seal-head.json``; when that is missing or does not match its manifest, every
    manifest of the device is read and the highest sequence wins.
    """
    path = _head_path(root, device)
    try:
        head = json.loads(path.read_bytes())
        target = root / head["manifest"]
        if hashlib.sha256(target.read_bytes()).hexdigest() == head["sha256"]:
            return int(head["sequence"]), str(head["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    best: tuple[int, str | None] = (0, None)
    for mpath in (root / device).glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.manifest.json"):
        try:
            data, obj = mf.load(mpath)
        except (OSError, ValueError):
            continue
        seq = int(obj.get("sequence", 0))
        if seq > best[0]:
            best = (seq, mf.sha256_hex(data))
    return best


def _set_head(root: Path, device: str, sequence: int, sha: str, part: Part) -> None:
    """Remember the device's newest manifest (a cache: not synced, rebuilt when wrong)."""
    rel = part.manifest.relative_to(root).as_posix()
    path = _head_path(root, device)
    write_tmp(path, json.dumps({"sequence": sequence, "sha256": sha, "manifest": rel}).encode())
    os.replace(tmp_path(path), path)


@dataclass
class _Prepared:
    part: Part
    data: bytes
    p7s: bytes
    sha: str
    state: str


# -- sealing -------------------------------------------------------------------------------


def stamp_label(settings: Settings) -> dict[str, Any]:
    """The stamp field of a manifest: mode and the TSA as configured (first in priority)."""
    servers = settings.tsa.servers
    if servers:
        tsa, accredited = servers[0].name, servers[0].accredited
    else:
        tsa, accredited = "builtin", False
    return {"mode": settings.seal.stamp_mode, "tsa": tsa, "accredited": accredited}


def read_passphrase(settings: Settings) -> bytes | None:
    path = settings.seal.key_passphrase_file
    if path is None:
        return None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SealError(f"{path} is readable by others (mode {mode:04o}): chmod 600 it")
    return path.read_bytes().rstrip(b"\r\n")


class SealRun:
    """Seals days of one data directory with one signer and one stamper."""

    def __init__(
        self,
        settings: Settings,
        *,
        signer: Signer | None = None,
        stamper: Stamper | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self.settings = settings
        self.root = settings.archive_dir
        self._signer = signer
        self._stamper = stamper
        self.now = now
        self.node = settings.cluster.node  # recorded in every manifest (sealer.node)
        self.sealed: list[tuple[Part, str]] = []  # (part, manifest sha256) of this run
        # device -> (sequence, sha256) of its newest manifest, this run's included
        self._heads: dict[str, tuple[int, str | None]] = {}

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            from logmaster.archive.keys import KeyStore, KeyStoreError

            try:
                self._signer = KeyStore(self.settings.data_dir / "keys").signer(
                    read_passphrase(self.settings)
                )
            except KeyStoreError as exc:
                raise SealError(str(exc)) from exc
        return self._signer

    @property
    def stamper(self) -> Stamper:
        if self._stamper is None:
            from logmaster.archive.tsa import stamper_from_settings

            self._stamper = stamper_from_settings(self.settings)
        return self._stamper

    def _now(self) -> dt.datetime:
        return self.now or dt.datetime.now(dt.UTC)

    def seal_day(
        self, day: dt.date, device: str | None = None, *, delay_s: float = 0.0
    ) -> list[SealResult]:
        """Seal every unsealed part of ``day`` (of one device, or all); declare silences."""
        infos = device_infos(self.settings)
        default_zone = ZoneInfo(self.settings.devices.default_timezone)
        slugs = set(archive_devices(self.root))
        # Silences of devices held by another node are that node's to declare (its archive
        # has the device's days); this node seals only what its own archive holds.
        node = self.settings.cluster.node
        slugs.update(s for s, i in infos.items() if i.silence_here(node))
        if device is not None:
            if device not in slugs and device not in infos:
                raise SealError(f"no device {device!r} in the registry or the archive")
            slugs = {device}
        results: list[SealResult] = []
        todo: list[tuple[str, ZoneInfo, list[Part], bool]] = []
        for slug in sorted(slugs):
            info = infos.get(slug)
            zone = info.zone if info else default_zone
            all_parts = mf.parts(self.root, slug, day)
            unsealed = [p for p in all_parts if not p.manifest.exists()]
            unsealed = [p for p in unsealed if resolve(p.log) is not None]
            silence = (
                not all_parts
                and info is not None
                and info.silence_here(node)
                and (info.created is None or info.created < day_end(day, zone))
            )
            if not (unsealed or silence):
                continue
            if self._now() < day_end(day, zone) + dt.timedelta(seconds=delay_s):
                results.append(
                    SealResult(slug, day, 0, "not_over", f"the day ends at {day_end(day, zone)}")
                )
                continue
            todo.append((slug, zone, unsealed, silence))
        if todo:
            _ = self.signer  # a key that cannot be opened stops the run before anything is marked
        self._mark([p for _s, _z, ps, _si in todo for p in ps])
        try:
            scans = self._scan(todo)
            stats = self.index_stats(day) if todo else None
            prepared: list[_Prepared] = []
            for slug, zone, unsealed, silence in todo:
                jobs: list[tuple[Part, ScanResult | None]] = (
                    [(Part(self.root, slug, day), None)] if silence else []
                )
                jobs += [(p, scans[p]) for p in unsealed]
                for part, scan in jobs:
                    item = self._prepare(part, zone, scan, stats)
                    if isinstance(item, SealResult):
                        results.append(item)
                    else:
                        prepared.append(item)
            results.extend(self._commit(prepared))
        finally:
            for _s, _z, ps, _si in todo:
                for p in ps:
                    _marker(p).unlink(missing_ok=True)
        if self.settings.seal.stamp_mode == "daily":
            self.stamp_daily_lists()
        return results

    def _mark(self, parts: list[Part]) -> None:
        """Mark the parts being sealed; wait until the writer can no longer be writing them."""
        marked_at = time.time()
        recent = False
        for p in parts:
            _marker(p).write_bytes(b"")
            actual = resolve(p.log)
            if actual is not None and actual.stat().st_mtime > marked_at - SETTLE_S:
                recent = True
        if recent:
            time.sleep(max(0.0, marked_at + SETTLE_S - time.time()))

    def _scan(self, todo: list[tuple[str, ZoneInfo, list[Part], bool]]) -> dict[Part, ScanResult]:
        works: list[_Work] = []
        parts: list[Part] = []
        gap = float(self.settings.seal.silence_threshold_s)
        for slug, zone, unsealed, _silence in todo:
            for p in unsealed:
                actual = resolve(p.log)
                assert actual is not None
                works.append(
                    _Work(actual, slug, p.day, zone.key, gap, _recorded_lines(p.chain), p.chain)
                )
                parts.append(p)
        for attempt in range(1, 100):
            results = scan_many(works, self.settings.seal.workers)
            # A file that grew while it was read (a writer that had not seen the marker yet)
            # is read again: the manifest must state the file as it stays.
            grown = [
                i
                for i, (w, r) in enumerate(zip(works, results, strict=True))
                if w.path.suffix == ".log"
                and w.path.exists()
                and w.path.stat().st_size != r.scan.size
            ]
            if not grown or attempt >= MAX_RESCANS:
                if grown:
                    log.error(
                        "Day file still growing while sealed; sealed as read (verify will "
                        "report the lines added after).",
                        extra={"files": " ".join(str(works[i].path) for i in grown)},
                    )
                return dict(zip(parts, results, strict=True))
            log.warning("Day file changed while being sealed; reading it again.")
            time.sleep(SETTLE_S)
        raise AssertionError("unreachable")

    def index_stats(self, day: dt.date) -> dict[str, tuple[int, int]] | None:
        try:
            from logmaster.cluster import local_stats
            from logmaster.index import open_index

            index = open_index(self.settings)
            try:
                # Keyed by this node's archive paths (a shared index names every node's files).
                return local_stats(index.parse_stats(day), self.settings.cluster.node)
            finally:
                index.close()
        except Exception as exc:
            log.warning("Index unreadable; manifests say so.", extra={"error": str(exc)})
            return None

    def _prepare(
        self,
        part: Part,
        zone: ZoneInfo,
        result: ScanResult | None,
        stats: dict[str, tuple[int, int]] | None,
    ) -> _Prepared | SealResult:
        """Build and sign a part's manifest in memory (files are written by _commit)."""
        try:
            body = self._manifest(part, zone, result, stats)
            data = mf.dumps(body)
            p7s = self.signer.sign_detached(data)
        except (OSError, SealError) as exc:
            log.error("Sealing failed.", extra={"part": part.label, "error": str(exc)})
            return SealResult(part.device, part.day, part.index, "error", str(exc))
        sha = mf.sha256_hex(data)
        self._heads[part.device] = (body["sequence"], sha)
        return _Prepared(part, data, p7s, sha, "silence" if result is None else "sealed")

    def _commit(self, prepared: list[_Prepared]) -> list[SealResult]:
        """Write every manifest and signature with two file system syncs in all.

        Temporary files first, one syncfs(2), then the renames, one more syncfs: a crash
        leaves each part either unsealed or completely sealed, and 1,000 devices cost two
        syncs instead of three fsyncs each.
        """
        results: list[SealResult] = []
        written: list[_Prepared] = []
        for item in prepared:
            part = item.part
            try:
                _make_dirs(part.folder)  # a declared silence may be the folder's first file
                write_tmp(part.p7s, item.p7s)
                write_tmp(part.manifest, item.data)
                written.append(item)
            except OSError as exc:
                log.error("Sealing failed.", extra={"part": part.label, "error": str(exc)})
                results.append(SealResult(part.device, part.day, part.index, "error", str(exc)))
        if not written:
            return results
        sync_filesystem(self.root)
        for item in written:
            part = item.part
            os.replace(tmp_path(part.p7s), part.p7s)
            os.replace(tmp_path(part.manifest), part.manifest)
        sync_filesystem(self.root)
        for item in written:
            part = item.part
            if item.sha == self._heads[part.device][1]:
                _set_head(self.root, part.device, self._heads[part.device][0], item.sha, part)
            self.sealed.append((part, item.sha))
            state, message = item.state, ""
            if self.settings.seal.stamp_mode == "manifest":
                message = stamp_or_queue(self.settings, self.stamper, part.manifest, part.tsr)
                if message:
                    state = "stamp_pending"
            results.append(
                SealResult(part.device, part.day, part.index, state, message, part.manifest)
            )
        return results

    def _manifest(
        self,
        part: Part,
        zone: ZoneInfo,
        result: ScanResult | None,
        stats: dict[str, tuple[int, int]] | None,
    ) -> dict[str, Any]:
        if part.device not in self._heads:
            self._heads[part.device] = device_head(self.root, part.device)
        seq, previous = self._heads[part.device]
        gap_s = self.settings.seal.silence_threshold_s
        scan = result.scan if result else None
        cert = self.signer.certificate
        from cryptography.hazmat.primitives import hashes

        body: dict[str, Any] = {
            "format": mf.FORMAT,
            "device": part.device,
            "date": part.day.isoformat(),
            "timezone": zone.key,
            "part": part.index,
            "sequence": seq + 1,
            "genesis": previous is None,
            "previous_manifest_sha256": previous,
            "declared_silence": scan is None,
            "sealed_at": self._now().astimezone(dt.UTC).isoformat(timespec="seconds"),
            "sealer": {"version": __version__, "node": self.node},
            "signing_key": {
                "certificate_sha256": cert.fingerprint(hashes.SHA256()).hex(),
                "subject": cert.subject.rfc4514_string(),
            },
            "stamp": stamp_label(self.settings),
            "silence_gaps": {
                "threshold_s": gap_s,
                "gaps": mf.silence_gaps(scan, part.day, zone, gap_s, whole_day=part.index == 0),
            },
        }
        if scan is None or result is None:
            body.update(
                file=None,
                size=0,
                lines=0,
                sha256=None,
                merkle_root=None,
                lines_sum=None,
                chain_head=None,
                chain_problems=[],
                first_received=None,
                last_received=None,
                counters=None,
                index=None,
                clock_offset=None,
            )
            return body
        body.update(
            file={"name": part.log.name, "path": part.relative},
            size=scan.size,
            lines=scan.lines,
            sha256=scan.sha256,
            merkle_root=scan.merkle_root,
            lines_sum=scan.lines_sum,
            chain_head=scan.chain_head,
            chain_problems=result.chain_problems,
            first_received=scan.first_received.isoformat() if scan.first_received else None,
            last_received=scan.last_received.isoformat() if scan.last_received else None,
            counters={
                "lines": scan.lines,
                "truncated": scan.truncated,
                "incomplete": scan.incomplete,
                "invalid_utf8_bytes": scan.invalid_utf8_bytes,
                "torn_tail_bytes": scan.torn_tail,
                "node_kernel_drops": self._kernel_drops(part.day),
            },
            index=_index_field(stats, part.relative, scan.lines),
            clock_offset=mf.clock_summary(scan.clock_offsets),
        )
        return body

    def _kernel_drops(self, day: dt.date) -> int | None:
        """UDP datagrams the node's kernel dropped that day (None: no collector figures)."""
        from logmaster.collector.daycounters import read_day

        return (read_day(self.root, day) or {}).get("kernel_drops")

    # -- daily stamp mode ---------------------------------------------------------------------

    def stamp_daily_lists(self) -> list[Path]:
        """Write, sign and stamp one list per date of the manifests sealed in this run."""
        by_date: dict[dt.date, list[tuple[Part, str]]] = {}
        for part, sha in self.sealed:
            by_date.setdefault(part.day, []).append((part, sha))
        self.sealed = []
        written = []
        for day, entries in sorted(by_date.items()):
            path = _next_list_path(self.root, day)
            body = {
                "format": LIST_FORMAT,
                "date": day.isoformat(),
                "created_at": self._now().astimezone(dt.UTC).isoformat(timespec="seconds"),
                "stamp": stamp_label(self.settings),
                "manifests": [
                    {"path": p.manifest.relative_to(self.root).as_posix(), "sha256": sha}
                    for p, sha in sorted(entries, key=lambda e: (e[0].device, e[0].index))
                ],
            }
            data = mf.dumps(body)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(_with(path, ".p7s"), self.signer.sign_detached(data))
            write_atomic(path, data)
            stamp_or_queue(self.settings, self.stamper, path, _with(path, ".tsr"))
            written.append(path)
        return written


def _index_field(
    stats: dict[str, tuple[int, int]] | None, relative: str, lines: int
) -> dict[str, Any]:
    if stats is None:
        return {"state": "unavailable"}
    indexed, failures = stats.get(relative, (0, 0))
    return {
        "state": "complete" if indexed >= lines else "index_incomplete",
        "lines_indexed": indexed,
        "parse_failures": failures,
        "parsed_lines": indexed - failures,
    }


def _marker(part: Part) -> Path:
    return part.folder / f"{part.stem}.sealing"


def _with(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def daily_lists(root: Path, day: dt.date) -> list[Path]:
    folder = root / DAILY_DIR / f"{day:%Y}" / f"{day:%m}"
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{day:%d}.list.json")) + sorted(
        folder.glob(f"{day:%d}.[0-9]*.list.json"), key=lambda p: int(p.name.split(".")[1])
    )


def _next_list_path(root: Path, day: dt.date) -> Path:
    folder = root / DAILY_DIR / f"{day:%Y}" / f"{day:%m}"
    first = folder / f"{day:%d}.list.json"
    if not first.exists():
        return first
    k = 2
    while (folder / f"{day:%d}.{k}.list.json").exists():
        k += 1
    return folder / f"{day:%d}.{k}.list.json"
