"""The stamp queue: RFC 3161 stamps that failed, kept in ``<data_dir>/seal/pending/``.

:func:`stamp_or_queue` stamps a file (a manifest, a daily list, a deletion receipt, a
compliance report) into its ``.tsr``; when the TSA fails it queues one JSON entry per target
(named by a hash of the target's path) and returns why, so nothing waits for a TSA.
:func:`retry_stamps` (the sealer schedule, ``logmaster seal --retry-stamps``,
``POST /seals/retry-stamps``) tries the due entries again with a doubling wait
(``seal.retry_initial_s`` .. ``seal.retry_max_s``); :func:`pending_stamps` lists the queue
(the ``logmaster_seal_pending_stamps`` metric).

Separate from ``seal.py``, which uses it, as do retention (receipts) and compliance reports;
it imports nothing from ``seal.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from logmaster.archive.files import write_atomic

if TYPE_CHECKING:
    from logmaster.archive.tsa import Stamper
    from logmaster.config import Settings

log = logging.getLogger(__name__)


def _pending_dir(settings: Settings) -> Path:
    return settings.data_dir / "seal" / "pending"


def _pending_file(settings: Settings, target: Path) -> Path:
    key = hashlib.sha256(str(target).encode()).hexdigest()[:24]
    return _pending_dir(settings) / f"{key}.json"


def stamp_or_queue(settings: Settings, stamper: Stamper, target: Path, tsr: Path) -> str:
    """Stamp ``target`` into ``tsr``; on failure queue it and return why (else "")."""
    from logmaster.archive.tsa import TsaError

    try:
        stamp = stamper.stamp(target.read_bytes())
    except TsaError as exc:
        _queue(settings, target, tsr, str(exc), attempts=1)
        log.warning(
            "Stamp failed; queued for retry.", extra={"file": str(target), "error": str(exc)}
        )
        return str(exc)
    write_atomic(tsr, stamp.response)
    return ""


def _queue(settings: Settings, target: Path, tsr: Path, error: str, attempts: int) -> None:
    s = settings.seal
    wait = min(s.retry_max_s, s.retry_initial_s * 2 ** (attempts - 1))
    body = {
        "target": str(target),
        "tsr": str(tsr),
        "attempts": attempts,
        "last_error": error,
        "next_attempt": time.time() + wait,
    }
    path = _pending_file(settings, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(body, indent=1).encode())


@dataclass
class PendingStamp:
    target: Path
    tsr: Path
    attempts: int
    last_error: str
    next_attempt: float
    entry: Path


def pending_stamps(settings: Settings) -> list[PendingStamp]:
    out = []
    for path in sorted(_pending_dir(settings).glob("*.json")):
        try:
            obj = json.loads(path.read_bytes())
            out.append(
                PendingStamp(
                    Path(obj["target"]),
                    Path(obj["tsr"]),
                    int(obj["attempts"]),
                    str(obj["last_error"]),
                    float(obj["next_attempt"]),
                    path,
                )
            )
        except (OSError, ValueError, KeyError) as exc:
            log.error(
                "Unreadable pending stamp entry.", extra={"file": str(path), "error": str(exc)}
            )
    return out


def retry_stamps(
    settings: Settings, stamper: Stamper | None = None, *, force: bool = False
) -> tuple[int, int]:
    """Try the queued stamps that are due (all with ``force``); return (stamped, still pending)."""
    from logmaster.archive.tsa import TsaError, stamper_from_settings

    done = left = 0
    for item in pending_stamps(settings):
        if not item.target.exists():
            item.entry.unlink(missing_ok=True)  # the manifest is gone (verify reports that)
            continue
        if item.tsr.exists():
            item.entry.unlink(missing_ok=True)
            continue
        if not force and item.next_attempt > time.time():
            left += 1
            continue
        try:
            stamper = stamper or stamper_from_settings(settings)
            stamp = stamper.stamp(item.target.read_bytes())
        except TsaError as exc:
            _queue(settings, item.target, item.tsr, str(exc), item.attempts + 1)
            left += 1
            continue
        write_atomic(item.tsr, stamp.response)
        item.entry.unlink(missing_ok=True)
        done += 1
    return done, left
