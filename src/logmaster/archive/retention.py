"""Retention and legal hold: how long sealed device-days are kept, and their purge.

Rules (ARCHITECTURE.md section 5, Law 5651):

- Every device keeps its days ``retention.default_days`` (at least 730) after the day ended,
  unless it has its own row in ``retention_policies``. Fewer than 730 days needs
  ``allow_short_retention`` set explicitly on that row; setting it is audited
  (``retention.set``) and :func:`overview` shows it, for reports.
- A day is *past retention* when ``today - day > days`` (today in the device's timezone): a day
  is kept for at least ``days`` full days after it ended.
- A legal hold (``legal_holds``: one device or all, a day range) blocks the purge of the days it
  covers until it is released; holds are never deleted.
- :func:`purge_day` is the only code that deletes archive files. It refuses a day inside
  retention, a held day and a day with an unsealed part (``RetentionError``), whoever asks;
  there is no API route and no CLI command that deletes anything else.

A purge run (:func:`purge`) writes one *deletion receipt* before it removes anything:
``<archive>/_receipts/<UTC time>.receipt.json`` lists every device-day it removes with each
part's manifest SHA-256, sequence, file SHA-256, line count and Merkle root and every file, is
signed like a manifest (``.p7s``, detached CMS with the operator key) and time-stamped
(``.tsr``; a failed stamp is queued and retried like a seal's). Receipt first: a crash between
the receipt and the deletion leaves files a later run removes again (a second receipt), never
a deletion without a receipt. Index partitions of purged days are dropped when no device has
a file of that day left (the index backends drop whole days only).

The tables ``retention_policies`` and ``legal_holds`` are in ``retention_models.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from logmaster import __version__
from logmaster.archive import manifest as mf
from logmaster.archive.retention_models import LegalHold, RetentionPolicy
from logmaster.db import utcnow

if TYPE_CHECKING:
    from logmaster.archive.keys import Signer
    from logmaster.archive.tsa import Stamper
    from logmaster.config import Settings

__all__ = [  # the tables live in retention_models.py; re-exported for rt.LegalHold & co.
    "LAST_PURGE_FILE",
    "MINIMUM_DAYS",
    "RECEIPTS_DIR",
    "RECEIPT_FORMAT",
    "DevicePolicy",
    "DueDay",
    "LegalHold",
    "PurgeResult",
    "RetentionError",
    "RetentionPolicy",
    "add_hold",
    "auto_purge",
    "check_purgeable",
    "device_days",
    "device_today",
    "list_holds",
    "overview",
    "past_retention",
    "plan",
    "policy_for",
    "purge",
    "purge_day",
    "purged_manifests",
    "receipts",
    "receipts_dir",
    "release_hold",
    "set_retention",
]

log = logging.getLogger(__name__)

MINIMUM_DAYS = 730
RECEIPTS_DIR = "_receipts"
RECEIPT_FORMAT = "logmaster-deletion-receipt/1"


class RetentionError(Exception):
    """A retention change or a purge that is refused; the message says why."""


# -- policies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevicePolicy:
    device: str
    days: int
    allow_short_retention: bool
    source: str  # default | device
    set_by: str | None = None
    set_at: dt.datetime | None = None
    reason: str = ""

    @property
    def short(self) -> bool:
        return self.days < MINIMUM_DAYS


def _row(session: Session, device: str) -> RetentionPolicy | None:
    query = sa.select(RetentionPolicy).where(RetentionPolicy.device == device)
    return session.scalars(query).first()


def policy_for(session: Session, settings: Settings, device: str) -> DevicePolicy:
    row = session.scalars(
        sa.select(RetentionPolicy).where(RetentionPolicy.device == device)
    ).first()
    if row is None:
        return DevicePolicy(device, settings.retention.default_days, False, "default")
    return DevicePolicy(
        device, row.days, row.allow_short_retention, "device", row.set_by, row.set_at, row.reason
    )


def overview(session: Session, settings: Settings, devices: list[str]) -> list[DevicePolicy]:
    """Every device's retention (reports show ``allow_short_retention`` and short values)."""
    rows = {r.device: r for r in session.scalars(sa.select(RetentionPolicy))}
    out = []
    for slug in sorted(set(devices) | set(rows)):
        row = rows.get(slug)
        out.append(
            DevicePolicy(slug, settings.retention.default_days, False, "default")
            if row is None
            else DevicePolicy(
                slug,
                row.days,
                row.allow_short_retention,
                "device",
                row.set_by,
                row.set_at,
                row.reason,
            )
        )
    return out


def _audit(
    session: Session,
    actor: str,
    source_ip: str | None,
    action: str,
    target: str,
    details: dict[str, Any],
) -> None:
    from logmaster.api import audit

    audit.record(
        session,
        actor=actor,
        source_ip=source_ip,
        action=action,
        target=target,
        result=audit.OK,
        details=details,
    )


def set_retention(
    session: Session,
    settings: Settings,
    device: str,
    days: int,
    *,
    actor: str,
    allow_short_retention: bool = False,
    reason: str = "",
    source_ip: str | None = None,
) -> DevicePolicy:
    """Set a device's retention (audited, committed). Below 730 days only when
    ``allow_short_retention`` is given explicitly, with a reason."""
    if days < 1:
        raise RetentionError("retention must be at least 1 day")
    if days < MINIMUM_DAYS and not allow_short_retention:
        raise RetentionError(
            f"{days} days is below the legal minimum of {MINIMUM_DAYS} (Law 5651): allow it "
            "explicitly (--allow-short / allow_short_retention); that is audited and shown in "
            "reports"
        )
    if days < MINIMUM_DAYS and not reason.strip():
        raise RetentionError("a retention below 730 days needs a reason")
    before = policy_for(session, settings, device)
    row = session.scalars(
        sa.select(RetentionPolicy).where(RetentionPolicy.device == device)
    ).first()
    if row is None:
        row = RetentionPolicy(device=device)
        session.add(row)
    row.days = days
    row.allow_short_retention = days < MINIMUM_DAYS
    row.reason = reason
    row.set_by = actor
    row.set_at = utcnow()
    _audit(
        session,
        actor,
        source_ip,
        "retention.set",
        device,
        {
            "days": days,
            "previous_days": before.days,
            "allow_short_retention": row.allow_short_retention,
            "reason": reason,
        },
    )
    session.commit()
    return policy_for(session, settings, device)


# -- legal holds ----------------------------------------------------------------------------


def add_hold(
    session: Session,
    device: str | None,
    first: dt.date,
    last: dt.date,
    *,
    reason: str,
    actor: str,
    case_ref: str = "",
    source_ip: str | None = None,
) -> LegalHold:
    """Place a legal hold (audited, committed)."""
    if first > last:
        raise RetentionError(f"the hold starts ({first}) after it ends ({last})")
    if not reason.strip():
        raise RetentionError("a legal hold needs a reason (the case, the request)")
    hold = LegalHold(
        device=device,
        first_day=first,
        last_day=last,
        reason=reason,
        case_ref=case_ref,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(hold)
    session.flush()
    _audit(
        session,
        actor,
        source_ip,
        "hold.add",
        device or "*",
        {
            "hold": hold.id,
            "from": first.isoformat(),
            "to": last.isoformat(),
            "reason": reason,
            "case_ref": case_ref,
        },
    )
    session.commit()
    return hold


def release_hold(
    session: Session, hold_id: int, *, reason: str, actor: str, source_ip: str | None = None
) -> LegalHold:
    """Release a hold (audited, committed); the row stays with who released it and why."""
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise RetentionError(f"no legal hold #{hold_id}")
    if hold.released_at is not None:
        raise RetentionError(f"legal hold #{hold_id} was already released")
    if not reason.strip():
        raise RetentionError("releasing a legal hold needs a reason")
    hold.released_at = utcnow()
    hold.released_by = actor
    hold.release_reason = reason
    _audit(
        session,
        actor,
        source_ip,
        "hold.release",
        hold.device or "*",
        {"hold": hold_id, "reason": reason},
    )
    session.commit()
    return hold


def list_holds(session: Session, include_released: bool = False) -> list[LegalHold]:
    query = sa.select(LegalHold).order_by(LegalHold.id)
    if not include_released:
        query = query.where(LegalHold.released_at.is_(None))
    return list(session.scalars(query))


# -- what is due --------------------------------------------------------------------------


def past_retention(day: dt.date, days: int, today: dt.date) -> bool:
    return (today - day).days > days


def device_days(root: Path, device: str) -> list[dt.date]:
    """Every day of the device with any file (day file, manifest, chain, supplement)."""
    found: set[dt.date] = set()
    for path in (root / device).glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9].*"):
        try:
            found.add(
                dt.date(int(path.parent.parent.name), int(path.parent.name), int(path.name[:2]))
            )
        except ValueError:
            continue
    return sorted(found)


@dataclass
class DueDay:
    device: str
    day: dt.date
    state: str  # purge | held | unsealed
    why: str = ""


def plan(
    settings: Settings,
    session: Session,
    *,
    now: dt.datetime | None = None,
    device: str | None = None,
) -> list[DueDay]:
    """Device-days past retention, each with whether it can be purged now."""
    from logmaster.archive.seal import archive_devices, device_infos

    root = settings.archive_dir
    now = now or dt.datetime.now(dt.UTC)
    infos = device_infos(settings)
    holds = list_holds(session)
    out: list[DueDay] = []
    for slug in archive_devices(root):
        if device is not None and slug != device:
            continue
        policy = policy_for(session, settings, slug)
        today = device_today(settings, slug, now, infos)
        for day in device_days(root, slug):
            if not past_retention(day, policy.days, today):
                break  # days are sorted: the rest are newer
            held = [h for h in holds if h.covers(slug, day)]
            if held:
                out.append(DueDay(slug, day, "held", ", ".join(h.describe() for h in held)))
                continue
            unsealed = [p for p in mf.parts(root, slug, day) if not p.manifest.exists()]
            if unsealed:
                out.append(DueDay(slug, day, "unsealed", "a part has no manifest: seal it first"))
                continue
            out.append(DueDay(slug, day, "purge"))
    return out


# -- purging -----------------------------------------------------------------------------


@dataclass
class PurgeResult:
    receipt: Path | None
    purged: list[DueDay] = field(default_factory=list)
    blocked: list[DueDay] = field(default_factory=list)
    removed_files: int = 0
    removed_bytes: int = 0
    index_days_dropped: list[dt.date] = field(default_factory=list)
    stamp_error: str = ""


def _day_files(root: Path, device: str, day: dt.date) -> list[Path]:
    from logmaster.archive.writer import day_path

    folder = day_path(root, device, day).parent
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{day:%d}.*") if p.is_file())


def _describe_day(root: Path, device: str, day: dt.date) -> dict[str, Any]:
    parts = []
    for part in mf.parts(root, device, day):
        data, obj = mf.load(part.manifest)
        parts.append(
            {
                "part": part.index,
                "manifest": part.manifest.relative_to(root).as_posix(),
                "manifest_sha256": mf.sha256_hex(data),
                "sequence": obj.get("sequence"),
                "sha256": obj.get("sha256"),
                "lines": obj.get("lines"),
                "merkle_root": obj.get("merkle_root"),
                "declared_silence": bool(obj.get("declared_silence")),
                "stamped": part.tsr.exists(),
            }
        )
    files = [
        {"path": p.relative_to(root).as_posix(), "size": p.stat().st_size}
        for p in _day_files(root, device, day)
    ]
    return {"device": device, "date": day.isoformat(), "parts": parts, "files": files}


def device_today(
    settings: Settings, device: str, now: dt.datetime, infos: dict[str, Any] | None = None
) -> dt.date:
    """The date ``now`` falls on in the device's timezone."""
    from logmaster.archive.seal import device_infos

    info = (infos if infos is not None else device_infos(settings)).get(device)
    return now.astimezone(info.zone if info else ZoneInfo(settings.devices.default_timezone)).date()


def check_purgeable(
    settings: Settings, session: Session, device: str, day: dt.date, today: dt.date
) -> None:
    """Raise RetentionError unless the device-day may be deleted on ``today`` (device's date)."""
    policy = policy_for(session, settings, device)
    if not past_retention(day, policy.days, today):
        keep_until = day + dt.timedelta(days=policy.days + 1)
        raise RetentionError(
            f"{device} {day:%d.%m.%Y} is inside its retention of {policy.days} days: it cannot "
            f"be deleted before {keep_until:%d.%m.%Y} (nobody can delete inside retention)"
        )
    for hold in list_holds(session):
        if hold.covers(device, day):
            raise RetentionError(f"{device} {day:%d.%m.%Y} is under {hold.describe()}")
    if any(not p.manifest.exists() for p in mf.parts(settings.archive_dir, device, day)):
        raise RetentionError(f"{device} {day:%d.%m.%Y} has an unsealed part: seal it first")


def purge_day(
    settings: Settings, session: Session, device: str, day: dt.date, today: dt.date
) -> tuple[int, int]:
    """Delete the files of one device-day after checking it may be (files, bytes removed).

    Only :func:`purge` calls this, after its receipt names the day; it checks again anyway.
    """
    check_purgeable(settings, session, device, day, today)
    files = bytes_ = 0
    for path in _day_files(settings.archive_dir, device, day):
        size = path.stat().st_size
        path.unlink()
        files += 1
        bytes_ += size
    month = settings.archive_dir / device / f"{day:%Y}" / f"{day:%m}"
    for folder in (month, month.parent):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            break
    return files, bytes_


def receipts_dir(settings: Settings) -> Path:
    return settings.archive_dir / RECEIPTS_DIR


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def purge(
    settings: Settings,
    engine: Engine,
    *,
    actor: str,
    dry_run: bool = False,
    device: str | None = None,
    now: dt.datetime | None = None,
    signer: Signer | None = None,
    stamper: Stamper | None = None,
) -> PurgeResult:
    """Remove every device-day past retention that no hold blocks; receipt first; audited."""
    from logmaster.archive.seal import SealError, device_infos, read_passphrase
    from logmaster.archive.stamps import stamp_or_queue

    now = now or dt.datetime.now(dt.UTC)
    root = settings.archive_dir
    with Session(engine) as session:
        due = plan(settings, session, now=now, device=device)
        todo = [d for d in due if d.state == "purge"]
        result = PurgeResult(None, todo, [d for d in due if d.state != "purge"])
        if dry_run or not todo:
            return result
        if signer is None:
            from logmaster.archive.keys import KeyStore, KeyStoreError

            try:
                signer = KeyStore(settings.data_dir / "keys").signer(read_passphrase(settings))
            except (KeyStoreError, SealError) as exc:
                raise RetentionError(f"cannot sign the deletion receipt: {exc}") from exc
        body = {
            "format": RECEIPT_FORMAT,
            "purged_at": now.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "purged_by": actor,
            "node": socket.gethostname(),
            "logmaster_version": __version__,
            "retention": {
                d: {
                    "days": p.days,
                    "allow_short_retention": p.allow_short_retention,
                    "source": p.source,
                }
                for d in sorted({t.device for t in todo})
                for p in [policy_for(session, settings, d)]
            },
            "days": [_describe_day(root, t.device, t.day) for t in todo],
        }
        data = mf.dumps(body)
        folder = receipts_dir(settings)
        folder.mkdir(parents=True, exist_ok=True)
        stem = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name, k = f"{stem}.receipt.json", 1
        while (folder / name).exists() or (folder / f"{name}.p7s").exists():
            k += 1  # two purges in the same microsecond (or a clock set back)
            name = f"{stem}-{k}.receipt.json"
        receipt = folder / name
        _write(receipt.with_name(name + ".p7s"), signer.sign_detached(data))
        _write(receipt, data)
        if stamper is None:
            from logmaster.archive.tsa import TsaError, stamper_from_settings

            try:
                stamper = stamper_from_settings(settings)
            except TsaError as exc:
                result.stamp_error = str(exc)
        if stamper is not None:
            result.stamp_error = stamp_or_queue(
                settings, stamper, receipt, receipt.with_name(name + ".tsr")
            )
        result.receipt = receipt
        infos = device_infos(settings)
        for t in todo:
            today = device_today(settings, t.device, now, infos)
            files, size = purge_day(settings, session, t.device, t.day, today)
            result.removed_files += files
            result.removed_bytes += size
        result.index_days_dropped = _drop_index(settings, sorted({t.day for t in todo}))
        _audit(
            session,
            actor,
            None,
            "retention.purge",
            receipt.relative_to(root).as_posix(),
            {
                "days": [f"{t.device} {t.day.isoformat()}" for t in todo][:1000],
                "count": len(todo),
                "files": result.removed_files,
                "bytes": result.removed_bytes,
                "blocked": len(result.blocked),
            },
        )
        session.commit()
    log.info(
        "Purged device-days past retention.",
        extra={"receipt": str(receipt), "days": len(todo), "files": result.removed_files},
    )
    return result


def _drop_index(settings: Settings, days: list[dt.date]) -> list[dt.date]:
    """Drop the index partitions of purged days that no device has files of any more."""
    from logmaster.archive.seal import archive_devices

    root = settings.archive_dir
    empty = [
        day for day in days if not any(_day_files(root, dev, day) for dev in archive_devices(root))
    ]
    if not empty:
        return []
    from logmaster.cluster import drop_indexed
    from logmaster.index import open_index

    try:
        backend = open_index(settings)
    except Exception as exc:  # the index is a rebuildable copy: never fail the purge for it
        log.warning("Index not opened; purged days stay indexed.", extra={"error": str(exc)})
        return []
    try:
        for day in empty:
            drop_indexed(backend, settings, day, day)
    finally:
        backend.close()
    return empty


def receipts(settings: Settings) -> list[tuple[Path, dict[str, Any]]]:
    """Every deletion receipt, oldest first, with its body."""
    out = []
    for path in sorted(receipts_dir(settings).glob("*.receipt.json")):
        try:
            out.append((path, json.loads(path.read_bytes())))
        except (OSError, ValueError) as exc:
            log.error("Unreadable deletion receipt.", extra={"file": str(path), "error": str(exc)})
    return out


def purged_manifests(settings: Settings) -> dict[str, Path]:
    """SHA-256 of every manifest a receipt says was purged -> that receipt.

    Verification can tell a day removed by retention (receipt) from a day removed by someone.
    """
    out: dict[str, Path] = {}
    for path, body in receipts(settings):
        for day in body.get("days", []):
            for part in day.get("parts", []):
                out[str(part.get("manifest_sha256"))] = path
    return out


LAST_PURGE_FILE = "last-purge"


def auto_purge(settings: Settings, now: dt.datetime | None = None) -> PurgeResult | None:
    """The daily automatic purge, for a scheduler to call on every pass (cheap when not due).

    Runs at most once per UTC day (``<data>/seal/last-purge`` holds the date of the last run)
    and only with ``retention.auto_purge``; returns None when it did not run.
    """
    if not settings.retention.auto_purge:
        return None
    now = now or dt.datetime.now(dt.UTC)
    marker = settings.data_dir / "seal" / LAST_PURGE_FILE
    today = now.astimezone(dt.UTC).date().isoformat()
    try:
        if marker.read_text().strip() == today:
            return None
    except OSError:
        pass
    from logmaster.db import make_engine

    engine = make_engine(settings.db_url)
    try:
        result = purge(settings, engine, actor="system:retention", now=now)
    finally:
        engine.dispose()
    marker.parent.mkdir(parents=True, exist_ok=True)
    _write(marker, today.encode())
    return result
