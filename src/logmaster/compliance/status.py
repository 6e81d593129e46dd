"""Compliance status per device and day: received, sealed, stamped, verified, gaps, parse failures.

Everything comes from the archive's own files (a day file, its chain, the manifests, ``.tsr``,
the daily stamp lists) plus the index's parse statistics, never from the collector's memory, so
the status says what an expert would find on disk. One :class:`DayStatus` per device-day:

=================  ==============================================================================
``state``          ``no_data`` (no file, no manifest), ``open`` (lines, not sealed yet),
                   ``stamp_pending`` (sealed, token awaited), ``sealed``, ``silence`` (a
                   declared silence: sealed with no lines)
``lines``          received lines (manifest, else the chain sidecar of an open day)
``tsa``            the TSA the manifest names, with ``accredited`` (the built-in TSA is not)
``verified``       the last verification verdict recorded (:func:`record_verdicts`) or None
``gaps``           the manifest's silence gaps (``{"from", "to", "seconds"}``)
``parse_failure_rate``  parse failures / lines indexed (manifest, else the index now)
=================  ==============================================================================

Cache: a calendar of two years of 1,000 devices is 730,000 device-days; reading that many
manifests per request would take minutes. :class:`StatusCache` keeps the rows in
``<data>/compliance/status.db`` (SQLite, rebuildable: delete it any time) per device-month, keyed
by the month folder's modification time. Every change that alters a day's seal state creates or
renames a file in that folder (a manifest, a ``.tsr``, a supplement, a ``.sealing`` marker), so
the folder's mtime moves; appends to an open day do not, which is why a month holding an open day
is never taken from the cache. A folder touched within ``SETTLE_S`` of the scan is not trusted
either (mtime granularity). A check is one ``stat`` per device-month.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from logmaster.archive import manifest as mf
from logmaster.archive.seal import archive_devices
from logmaster.archive.seal_status import seal_status

if TYPE_CHECKING:
    from logmaster.archive.seal_status import DayStatus as SealDayStatus
    from logmaster.archive.verdict import DayVerdict
    from logmaster.config import Settings

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SETTLE_S = 2.0
STATES = ("no_data", "open", "stamp_pending", "sealed", "silence")
# A sealed day whose index is still incomplete is rechecked until it is this old; after that
# the figures the index has are final (a day nobody indexes stays "unavailable").
INDEX_SETTLE_DAYS = 7


@dataclass
class DayStatus:
    """The compliance status of one device-day."""

    device: str
    day: dt.date
    state: str = "no_data"
    parts: int = 0
    lines: int = 0
    size: int = 0
    sealed_at: str | None = None
    stamped: bool = False
    stamp_mode: str | None = None
    tsa: str | None = None
    accredited: bool | None = None
    declared_silence: bool = False
    first_received: str | None = None
    last_received: str | None = None
    gaps: list[dict[str, Any]] = field(default_factory=list)
    gap_seconds: int = 0
    lines_indexed: int | None = None
    parse_failures: int | None = None
    clock_offset_s: float | None = None  # median device time - receive time
    clock_max_abs_s: float | None = None
    verified: str | None = None  # OK | FAIL | PENDING | UNSEALED, from the last verification
    verified_at: str | None = None
    verify_reasons: list[str] = field(default_factory=list)

    @property
    def sealed(self) -> bool:
        return self.state in ("stamp_pending", "sealed", "silence")

    @property
    def parse_failure_rate(self) -> float | None:
        if not self.lines_indexed or self.parse_failures is None:
            return None
        return round(self.parse_failures / self.lines_indexed, 6)

    def to_json(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        body["day"] = self.day.isoformat()
        body["sealed"] = self.sealed
        body["parse_failure_rate"] = self.parse_failure_rate
        return body


# -- one device-day from its files -----------------------------------------------------------


def _tally(status: DayStatus, obj: dict[str, Any]) -> None:
    """Add one manifest's figures to the day's status."""
    status.lines += int(obj.get("lines") or 0)
    status.size += int(obj.get("size") or 0)
    status.sealed_at = max(filter(None, [status.sealed_at, obj.get("sealed_at")]), default=None)
    stamp = obj.get("stamp") or {}
    if obj.get("part", 0) == 0 or status.tsa is None:
        status.tsa = stamp.get("tsa")
        status.accredited = stamp.get("accredited")
        status.stamp_mode = stamp.get("mode")
    if obj.get("first_received"):
        status.first_received = min(
            filter(None, [status.first_received, obj["first_received"]]), key=_instant
        )
    if obj.get("last_received"):
        status.last_received = max(
            filter(None, [status.last_received, obj["last_received"]]), key=_instant
        )
    gaps = (obj.get("silence_gaps") or {}).get("gaps") or []
    status.gaps.extend(gaps)
    status.gap_seconds += sum(int(g.get("seconds") or 0) for g in gaps)
    index = obj.get("index") or {}
    if index.get("state") == "complete":
        status.lines_indexed = (status.lines_indexed or 0) + int(index.get("lines_indexed") or 0)
        status.parse_failures = (status.parse_failures or 0) + int(index.get("parse_failures") or 0)
    clock = obj.get("clock_offset") or {}
    if clock and obj.get("part", 0) == 0:
        status.clock_offset_s = clock.get("median_s")
        status.clock_max_abs_s = clock.get("max_abs_s")


def _instant(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


_PART = re.compile(r"^(\d\d)(?:\.s([1-9]\d*))?\.(?:log|manifest\.json)")


def quick_seal_status(
    root: Path, device: str, day: dt.date, names: set[str]
) -> SealDayStatus | None:
    """``seal_status.seal_status`` from a listing of the month folder, for the common cases.

    Every part either open (no manifest, no marker) or stamped (manifest and ``.tsr``): the
    state follows from the names alone. Anything else (a ``.sealing`` marker, a manifest
    awaiting its stamp, which in stamp mode daily means reading the daily lists) returns None
    and the caller asks ``seal_status``. A cold scan of two years of 1,000 devices is 730,000
    of these: one ``listdir`` per month instead of a glob and stats per day.
    """
    from logmaster.archive.seal_status import DayStatus as SealDay
    from logmaster.archive.seal_status import PartStatus

    dd = f"{day:%d}"
    indexes = set()
    for name in names:
        if name.startswith(dd) and (m := _PART.match(name)) is not None:
            indexes.add(int(m.group(2) or 0))
    parts: list[PartStatus] = []
    folder = mf.Part(root, device, day).folder if indexes else root
    for i in sorted(indexes):
        stem = dd if i == 0 else f"{dd}.s{i}"
        manifest = f"{stem}.manifest.json"
        if f"{stem}.sealing" in names:
            return None
        if manifest not in names:
            parts.append(PartStatus(i, "open", folder / manifest))
        elif f"{manifest}.tsr" in names:
            parts.append(PartStatus(i, "sealed", folder / manifest))
        else:
            return None
    if not parts:
        return SealDay(device, day, "no_data", [])
    if any(ps.state == "open" for ps in parts):
        return SealDay(device, day, "unsealed", parts)
    # "sealed" or "silence": day_status tells them apart from the manifest it reads anyway.
    return SealDay(device, day, "sealed", parts)


def day_status(
    root: Path, device: str, day: dt.date, names: set[str] | None = None
) -> tuple[DayStatus, bool]:
    """(status from the files, whether its parse figures are final).

    ``names``: the month folder's file names, when the caller listed it already.
    """
    from logmaster.archive.verify import stats_day

    status = DayStatus(device, day)
    seal = (quick_seal_status(root, device, day, names) if names is not None else None) or (
        seal_status(root, device, day)
    )
    status.parts = len(seal.parts)
    if seal.state == "no_data":
        return status, True
    final_index = True
    for part_status in seal.parts:
        if part_status.state in ("open", "sealing"):
            path = mf.actual_file(mf.Part(root, device, day, part_status.part))
            if path is not None:
                try:
                    st = stats_day(device, day, path)
                    status.lines += st.lines
                    status.size += st.size
                except OSError:
                    pass
            final_index = False
            continue
        try:
            _, obj = mf.load(part_status.manifest)
        except (OSError, ValueError) as exc:
            log.warning(
                "Unreadable manifest in the status scan.",
                extra={"file": str(part_status.manifest), "error": str(exc)},
            )
            continue
        status.declared_silence = status.declared_silence or bool(obj.get("declared_silence"))
        if (obj.get("index") or {}).get("state") not in ("complete", None) and obj.get("lines"):
            final_index = False
        _tally(status, obj)
    state = seal.state
    if state == "sealed" and status.declared_silence and len(seal.parts) == 1:
        state = "silence"  # as seal_status says it (quick_seal_status leaves it to us)
    status.state = {"unsealed": "open"}.get(state, state)
    status.stamped = state in ("sealed", "silence")
    if status.declared_silence and not status.lines:
        status.lines_indexed = status.parse_failures = None
    return status, final_index


# -- the cache ------------------------------------------------------------------------------

_COLUMNS = [f.name for f in dataclasses.fields(DayStatus) if not f.name.startswith("verif")]
_SELECT = ", ".join(_COLUMNS)


def _encode(s: DayStatus) -> tuple[Any, ...]:
    values = []
    for name in _COLUMNS:
        v = getattr(s, name)
        if name == "day":
            v = v.isoformat()
        elif name == "gaps":
            v = json.dumps(v)
        elif isinstance(v, bool):
            v = int(v)
        values.append(v)
    return tuple(values)


_DAY = _COLUMNS.index("day")
_GAPS = _COLUMNS.index("gaps")
_BOOLS = [_COLUMNS.index(n) for n in ("stamped", "declared_silence", "accredited")]


def _decode(row: tuple[Any, ...]) -> DayStatus:
    # Positional: the cached columns are DayStatus's leading fields, in order (a calendar of
    # 730,000 device-days spends most of its time here).
    values = list(row)
    values[_DAY] = dt.date.fromisoformat(values[_DAY])
    values[_GAPS] = orjson.loads(values[_GAPS])
    for i in _BOOLS:
        if values[i] is not None:
            values[i] = bool(values[i])
    return DayStatus(*values)


class StatusCache:
    """Device-day statuses of one archive, cached per device-month in a SQLite file."""

    def __init__(self, settings: Settings, path: Path | None = None) -> None:
        self.settings = settings
        self.root = settings.archive_dir
        self.path = path or settings.data_dir / "compliance" / "status.db"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.hits = 0  # device-months answered from the cache (tests and figures read these)
        self.scans = 0

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                # A cache: an older layout is dropped and rebuilt from the files.
                db.executescript(
                    "DROP TABLE IF EXISTS months; DROP TABLE IF EXISTS days;"
                    "DROP TABLE IF EXISTS verdicts;"
                )
            cols = ", ".join(_COLUMNS)
            db.executescript(
                f"""
                CREATE TABLE IF NOT EXISTS months (
                    device TEXT, month TEXT, mtime_ns INTEGER, stable INTEGER,
                    PRIMARY KEY (device, month));
                CREATE TABLE IF NOT EXISTS days ({cols}, PRIMARY KEY (device, day));
                CREATE TABLE IF NOT EXISTS verdicts (
                    device TEXT, day TEXT, verdict TEXT, reasons TEXT, verified_at TEXT,
                    PRIMARY KEY (device, day));
                PRAGMA user_version = {SCHEMA_VERSION};
                """
            )
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- reading ---------------------------------------------------------------------------

    def _ensure(self, device: str, first: dt.date, last: dt.date) -> None:
        """Bring the cached rows of the device's months in [first, last] up to date.

        One query for the months' keys and one ``stat`` per month folder; only a month whose
        folder changed (or that holds an open day) is scanned again.
        """
        lo, hi = f"{first:%Y-%m}", f"{last:%Y-%m}"
        with self._lock:
            known = {
                m: (mtime, stable)
                for m, mtime, stable in self.db.execute(
                    "SELECT month, mtime_ns, stable FROM months "
                    "WHERE device = ? AND month BETWEEN ? AND ?",
                    (device, lo, hi),
                )
            }
        for y, m in _months(first, last):
            key = f"{y:04d}-{m:02d}"
            folder = f"{self.root}/{device}/{y:04d}/{m:02d}"  # str: 24,000 stats per calendar
            try:
                mtime = os.stat(folder).st_mtime_ns
            except FileNotFoundError:
                if key in known:  # the month was removed (retention): forget it
                    with self._lock:
                        self.db.execute(
                            "DELETE FROM days WHERE device = ? AND day BETWEEN ? AND ?",
                            (device, key + "-01", key + "-31"),
                        )
                        self.db.execute(
                            "DELETE FROM months WHERE device = ? AND month = ?", (device, key)
                        )
                        self.db.commit()
                continue
            mtime_then, stable = known.get(key, (None, False))
            if stable and mtime_then == mtime:
                self.hits += 1
            else:
                self._scan(device, y, m, Path(folder), mtime)

    def month(self, device: str, year: int, month: int) -> list[DayStatus]:
        """Statuses of the days of one device-month that have files (rescanned when changed)."""
        first = dt.date(year, month, 1)
        last = dt.date(year, month, calendar.monthrange(year, month)[1])
        return list(self.statuses(first, last, [device]))

    def _scan(
        self, device: str, year: int, month: int, folder: Path, mtime: int
    ) -> list[DayStatus]:
        self.scans += 1
        names = set(os.listdir(folder))
        days = sorted({int(n[:2]) for n in names if n[:2].isdigit() and n[2:3] == "."})
        out: list[DayStatus] = []
        stable = time.time() - mtime / 1e9 > SETTLE_S
        parse: dict[dt.date, dict[str, tuple[int, int]] | None] = {}
        for d in days:
            try:
                day = dt.date(year, month, d)
            except ValueError:
                continue
            status, final_index = day_status(self.root, device, day, names)
            if status.state == "open":
                stable = False
            if not final_index and status.lines:
                stats = parse.get(day) if day in parse else self._index_stats(day)
                parse[day] = stats
                if not self._apply_index(status, stats) and not self._settled(day):
                    stable = False
            out.append(status)
        key = f"{year:04d}-{month:02d}"
        with self._lock:
            db = self.db
            before = {
                r[0]: (r[1], r[2])
                for r in db.execute(
                    "SELECT day, state, parts FROM days WHERE device = ? AND day BETWEEN ? AND ?",
                    (device, key + "-01", key + "-31"),
                )
            }
            # A verdict is about the files it saw: a day whose seal state moved is verified anew.
            changed = [
                (device, s.day.isoformat())
                for s in out
                if before.get(s.day.isoformat(), (s.state, s.parts)) != (s.state, s.parts)
            ]
            db.executemany("DELETE FROM verdicts WHERE device = ? AND day = ?", changed)
            db.execute(
                "DELETE FROM days WHERE device = ? AND day BETWEEN ? AND ?",
                (device, key + "-01", key + "-31"),
            )
            marks = ", ".join("?" * len(_COLUMNS))
            db.executemany(f"INSERT INTO days VALUES ({marks})", [_encode(s) for s in out])
            db.execute(
                "INSERT OR REPLACE INTO months VALUES (?, ?, ?, ?)", (device, key, mtime, stable)
            )
            db.commit()
        return out

    def _settled(self, day: dt.date) -> bool:
        return (dt.date.today() - day).days > INDEX_SETTLE_DAYS

    def _index_stats(self, day: dt.date) -> dict[str, tuple[int, int]] | None:
        try:
            from logmaster.cluster import local_stats
            from logmaster.index import open_index

            index = open_index(self.settings)
            try:
                # Keyed by this node's archive paths (a shared index names every node's files).
                return local_stats(index.parse_stats(day), self.settings.cluster.node)
            finally:
                index.close()
        except Exception as exc:  # an index that cannot be read leaves the rate unknown
            log.warning("Index unreadable for the status.", extra={"error": str(exc)})
            return None

    def _apply_index(self, status: DayStatus, stats: dict[str, tuple[int, int]] | None) -> bool:
        """Fill the parse figures from the index; True when it has read the whole day."""
        if stats is None:
            return False
        indexed = failures = 0
        for part in mf.parts(self.root, status.device, status.day):
            n, e = stats.get(part.relative, (0, 0))
            indexed += n
            failures += e
        status.lines_indexed, status.parse_failures = indexed, failures
        return indexed >= status.lines and status.state != "open"

    def statuses(
        self,
        first: dt.date,
        last: dt.date,
        devices: Iterable[str] | None = None,
        *,
        fill: bool = False,
    ) -> Iterator[DayStatus]:
        """Every device-day in [first, last] that has files (every day with ``fill``)."""
        names = sorted(devices) if devices is not None else archive_devices(self.root)
        for device in names:
            self._ensure(device, first, last)
            with self._lock:
                rows = self.db.execute(
                    f"SELECT {_SELECT} FROM days WHERE device = ? AND day BETWEEN ? AND ? "
                    "ORDER BY day",
                    (device, first.isoformat(), last.isoformat()),
                ).fetchall()
            have = {s.day: s for s in map(_decode, rows)}
            self._attach_verdicts(device, have, first, last)
            if fill:
                day = first
                while day <= last:
                    yield have.get(day) or DayStatus(device, day)
                    day += dt.timedelta(days=1)
            else:
                yield from have.values()

    def cells(
        self, first: dt.date, last: dt.date, devices: Iterable[str]
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(device, compact day cells) for a calendar: days with files only, no gap lists.

        The cheap path of a large heatmap (two years of 1,000 devices): rows go from SQLite to
        dicts without building :class:`DayStatus` objects.
        """
        for device in sorted(devices):
            self._ensure(device, first, last)
            with self._lock:
                rows = self.db.execute(
                    "SELECT d.day, d.state, d.lines, d.tsa, d.accredited, v.verdict, "
                    "d.gap_seconds, d.lines_indexed, d.parse_failures FROM days d "
                    "LEFT JOIN verdicts v ON v.device = d.device AND v.day = d.day "
                    "WHERE d.device = ? AND d.day BETWEEN ? AND ? ORDER BY d.day",
                    (device, first.isoformat(), last.isoformat()),
                ).fetchall()
            yield (
                device,
                [
                    {
                        "day": day,
                        "state": state,
                        "lines": lines,
                        "tsa": tsa,
                        "accredited": None if acc is None else bool(acc),
                        "verified": verdict,
                        "gap_seconds": gap_s,
                        "parse_failure_rate": round(fail / indexed, 6)
                        if indexed and fail is not None
                        else None,
                    }
                    for day, state, lines, tsa, acc, verdict, gap_s, indexed, fail in rows
                ],
            )

    def day(self, device: str, day: dt.date) -> DayStatus:
        return next(iter(self.statuses(day, day, [device], fill=True)))

    # -- verification verdicts ---------------------------------------------------------------

    def _attach_verdicts(
        self, device: str, have: dict[dt.date, DayStatus], first: dt.date, last: dt.date
    ) -> None:
        if not have:
            return
        with self._lock:
            rows = self.db.execute(
                "SELECT day, verdict, reasons, verified_at FROM verdicts "
                "WHERE device = ? AND day BETWEEN ? AND ?",
                (device, first.isoformat(), last.isoformat()),
            ).fetchall()
        for day, verdict, reasons, verified_at in rows:
            s = have.get(dt.date.fromisoformat(day))
            if s is not None:
                s.verified, s.verified_at = verdict, verified_at
                s.verify_reasons = json.loads(reasons)

    def record_verdicts(self, verdicts: Iterable[DayVerdict]) -> int:
        """Store verification verdicts (the newest per device-day wins)."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        rows = [
            (
                v.device,
                v.day.isoformat(),
                v.verdict,
                json.dumps([f"{r.code}: {r.message}" for r in v.reasons], ensure_ascii=False),
                now,
            )
            for v in verdicts
        ]
        with self._lock:
            self.db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?)", rows)
            self.db.commit()
        return len(rows)

    def unverified(self, first: dt.date, last: dt.date) -> list[tuple[str, dt.date]]:
        """Sealed device-days in range with no verdict, or one given before the stamp came."""
        todo = []
        for s in self.statuses(first, last):
            done = s.state in ("sealed", "silence") and s.verified not in (None, "PENDING")
            if s.sealed and not done and not (s.state == "stamp_pending" and s.verified):
                todo.append((s.device, s.day))
        return todo


def verify_and_record(
    settings: Settings,
    cache: StatusCache,
    device: str | None = None,
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> list[DayVerdict]:
    """Run the seal verification for a range and record its verdicts in the status."""
    from logmaster.archive.verdict import verify_days

    verdicts = verify_days(settings, device, first, last)
    cache.record_verdicts(verdicts)
    return verdicts


def _months(first: dt.date, last: dt.date) -> Iterator[tuple[int, int]]:
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        yield y, m
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
