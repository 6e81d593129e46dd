"""Per-day collector counters the seal reads: ``<archive>/_counters/<YYYY-MM-DD>.json``.

The UDP kernel drops of this node are counted per listener since the collector started; the
seal of a device-day wants them per day. Every few seconds (an ingest periodic task) the
increase since the last look is added to the file of the current day (the default timezone's
date: drops belong to the node, not to a device). A restart continues the day's file, so the
figure is the day's total as far as the collector saw it running.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from logmaster.collector.stats import ListenerStats

COUNTERS_DIR = "_counters"
WRITE_EVERY_S = 30.0


def counters_path(archive: Path, day: dt.date) -> Path:
    return archive / COUNTERS_DIR / f"{day.isoformat()}.json"


def read_day(archive: Path, day: dt.date) -> dict[str, int] | None:
    """The counters of ``day``, or None when the collector wrote none."""
    try:
        body = json.loads(counters_path(archive, day).read_bytes())
        return {k: int(v) for k, v in body.items() if k != "date"}
    except (OSError, ValueError, TypeError, AttributeError):
        return None


class DayCounters:
    """An ingest periodic task: adds the node's new kernel drops to today's file."""

    def __init__(
        self, archive: Path, zone: str, listeners: Callable[[], list[ListenerStats]]
    ) -> None:
        self.archive = archive
        self.zone = ZoneInfo(zone)
        self.listeners = listeners
        self.day: dt.date | None = None
        self.drops = 0
        self.last_total: int | None = None
        self.written_at = 0.0
        self.dirty = True

    def __call__(self) -> None:
        now = dt.datetime.now(self.zone)
        total = sum(st.kernel_drops for st in self.listeners())
        if now.date() != self.day:
            if self.day is not None:
                self._add(total)
                self._write()  # close the day that ended
            self.day = now.date()
            self.drops = (read_day(self.archive, self.day) or {}).get("kernel_drops", 0)
            self.dirty = True
        self._add(total)
        if self.dirty and now.timestamp() - self.written_at >= WRITE_EVERY_S:
            self._write()
            self.written_at = now.timestamp()

    def _add(self, total: int) -> None:
        if self.last_total is not None and total > self.last_total:
            self.drops += total - self.last_total
            self.dirty = True
        self.last_total = total

    def _write(self) -> None:
        assert self.day is not None
        path = counters_path(self.archive, self.day)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"date": self.day.isoformat(), "kernel_drops": self.drops}))
        os.replace(tmp, path)
        self.dirty = False
