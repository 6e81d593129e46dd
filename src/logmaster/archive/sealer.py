"""The daily schedule: seal each device-day shortly after the device's local midnight.

:meth:`Sealer.run` (``logmaster seal --follow``; ``logmaster run`` starts it) passes every
``PASS_S`` seconds. A pass:

1. finds the days to seal: days with a day file or supplement without a manifest whose local
   day ended at least ``seal.delay_s`` ago in the device's timezone, and days on which an
   approved device sent nothing (a declared silence). The first pass after a start looks back
   over the whole archive (days missed while LogMaster was down; silences up to
   ``SILENCE_CATCH_UP_DAYS`` back); later passes look at the last ``WINDOW_DAYS`` days only,
   so a pass stays cheap with years of archive;
2. seals them, oldest first (:class:`logmaster.archive.seal.SealRun`);
3. retries the stamps that are due (doubling back-off, ``seal.retry_*``);
4. compresses sealed day files the index has read completely (``seal.compression``).

Each step's failure is logged and retried on the next pass; one device's broken file never
stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from zoneinfo import ZoneInfo

from logmaster.archive import manifest as mf
from logmaster.archive.compress import compress_sealed
from logmaster.archive.seal import (
    DeviceInfo,
    SealError,
    SealRun,
    archive_devices,
    day_end,
    device_infos,
)
from logmaster.archive.seal_status import unsealed_days
from logmaster.archive.stamps import retry_stamps
from logmaster.config import Settings

log = logging.getLogger(__name__)

PASS_S = 60.0
WINDOW_DAYS = 3
SILENCE_CATCH_UP_DAYS = 62
COMPRESS_WINDOW_DAYS = 7


class Sealer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.archive_dir
        self.first_pass = True

    def due_days(self, now: dt.datetime) -> list[dt.date]:
        """Dates with something to seal now (over in the device's zone + delay)."""
        infos = device_infos(self.settings)
        default = DeviceInfo("", ZoneInfo(self.settings.devices.default_timezone), "unknown")
        delay = dt.timedelta(seconds=self.settings.seal.delay_s)
        due: set[dt.date] = set()
        look_back = None if self.first_pass else WINDOW_DAYS
        for slug in archive_devices(self.root):
            zone = infos.get(slug, default).zone
            for day in self._candidates(slug, now, look_back):
                if now >= day_end(day, zone) + delay:
                    due.add(day)
        silence_back = SILENCE_CATCH_UP_DAYS if self.first_pass else WINDOW_DAYS
        for info in infos.values():
            if not info.silence_here(self.settings.cluster.node):
                continue
            today = now.astimezone(info.zone).date()
            for back in range(1, silence_back + 1):
                day = today - dt.timedelta(days=back)
                if info.created is not None and info.created >= day_end(day, info.zone):
                    break
                if now >= day_end(day, info.zone) + delay and not mf.parts(
                    self.root, info.slug, day
                ):
                    due.add(day)
        return sorted(due)

    def _candidates(self, slug: str, now: dt.datetime, look_back: int | None) -> list[dt.date]:
        if look_back is None:
            return sorted(set(unsealed_days(self.root, slug)))
        today = now.astimezone(dt.UTC).date()
        days = []
        for back in range(-1, look_back + 1):
            day = today - dt.timedelta(days=back)
            if any(not p.manifest.exists() for p in mf.parts(self.root, slug, day)):
                days.append(day)
        return days

    def run_once(self, now: dt.datetime | None = None) -> int:
        """One pass; return the number of parts sealed."""
        now = now or dt.datetime.now(dt.UTC)
        sealed = 0
        try:
            days = self.due_days(now)
        except OSError as exc:
            log.error("Cannot list the archive; retrying.", extra={"error": str(exc)})
            return 0
        run = SealRun(self.settings, now=now)
        for day in days:
            try:
                results = run.seal_day(day, delay_s=self.settings.seal.delay_s)
            except SealError as exc:
                log.error("Sealing stopped.", extra={"day": str(day), "error": str(exc)})
                break
            sealed += sum(r.state in ("sealed", "stamp_pending", "silence") for r in results)
            for r in results:
                if r.state == "error":
                    log.error(
                        "Sealing a device-day failed.",
                        extra={"device": r.device, "day": str(r.day), "error": r.message},
                    )
        self.first_pass = False
        try:
            retry_stamps(self.settings)
        except Exception as exc:
            log.error("Stamp retry failed; next pass.", extra={"error": str(exc)})
        self.compress(now, run)
        if sealed:
            log.info("Seal pass done.", extra={"parts": sealed, "days": len(days)})
        return sealed

    def compress(self, now: dt.datetime, run: SealRun) -> None:
        method = self.settings.seal.compression
        if method == "none":
            return
        today = now.astimezone(dt.UTC).date()
        for back in range(1, COMPRESS_WINDOW_DAYS + 1):
            day = today - dt.timedelta(days=back)
            todo = [
                p
                for slug in archive_devices(self.root)
                for p in mf.parts(self.root, slug, day)
                if p.manifest.exists() and p.log.exists()
            ]
            if todo:
                compress_sealed(self.root, todo, method, run.index_stats(day))

    def run(self, stop: threading.Event, once: bool = False) -> None:
        """Pass every PASS_S seconds until ``stop`` is set (``once``: one pass)."""
        while once or not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the schedule must survive anything one pass meets
                log.exception("Seal pass failed; next pass.", extra={"error": str(exc)})
            try:
                # Past-retention days go once a UTC day, with a signed receipt; legal holds
                # and unsealed days are never purged (archive/retention.py).
                from logmaster.archive.retention import auto_purge

                auto_purge(self.settings)
            except Exception as exc:
                log.exception("Retention purge failed; next pass.", extra={"error": str(exc)})
            if once:
                return
            stop.wait(PASS_S)
