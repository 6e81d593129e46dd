"""The seal state of a device-day (no_data, unsealed, stamp_pending, sealed, silence).

:func:`seal_status` reads only the files of the day (manifests, ``.tsr``, ``<stem>.sealing``
markers, the daily lists of stamp mode ``daily``), never hashes a day file: cheap enough for
the compliance calendar and the API. :func:`unsealed_days` finds the dates of a
device that still have a day file or supplement without a manifest.

Kept apart from ``seal.py`` (which writes seals) because many readers only ask for the state;
it reads the naming rules (markers, daily lists) from there.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from logmaster.archive import manifest as mf
from logmaster.archive.manifest import Part
from logmaster.archive.seal import _marker, _with, daily_lists


@dataclass
class PartStatus:
    part: int
    state: str  # open | sealing | sealed | stamp_pending
    manifest: Path


@dataclass
class DayStatus:
    device: str
    day: dt.date
    state: str  # no_data | unsealed | stamp_pending | sealed | silence
    parts: list[PartStatus]


def _covered_by_daily(root: Path, part: Part, sha: str) -> tuple[bool, bool]:
    """(listed in a daily list, that list stamped)."""
    rel = part.manifest.relative_to(root).as_posix()
    for lst in daily_lists(root, part.day):
        try:
            obj = json.loads(lst.read_bytes())
        except (OSError, ValueError):
            continue
        if any(e.get("path") == rel and e.get("sha256") == sha for e in obj.get("manifests", [])):
            return True, _with(lst, ".tsr").exists()
    return False, False


def seal_status(root: Path, device: str, day: dt.date) -> DayStatus:
    """The seal state of one device-day, from its files (cheap: no hashing of day files)."""
    out: list[PartStatus] = []
    silence = False
    for part in mf.parts(root, device, day):
        if _marker(part).exists():
            out.append(PartStatus(part.index, "sealing", part.manifest))
            continue
        if not part.manifest.exists():
            out.append(PartStatus(part.index, "open", part.manifest))
            continue
        stamped = part.tsr.exists()
        try:
            data, obj = mf.load(part.manifest)
            silence = silence or bool(obj.get("declared_silence"))
            if not stamped and obj.get("stamp", {}).get("mode") == "daily":
                stamped = _covered_by_daily(root, part, mf.sha256_hex(data))[1]
        except (OSError, ValueError):
            pass
        out.append(PartStatus(part.index, "sealed" if stamped else "stamp_pending", part.manifest))
    states = {p.state for p in out}
    if not out:
        state = "no_data"
    elif states & {"open", "sealing"}:
        state = "unsealed"
    elif "stamp_pending" in states:
        state = "stamp_pending"
    else:
        state = "silence" if silence and len(out) == 1 else "sealed"
    return DayStatus(device, day, state, out)


def unsealed_days(root: Path, device: str) -> Iterable[dt.date]:
    """Dates of the device that have a day file or supplement without a manifest."""
    for path in sorted((root / device).glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.log*")):
        if path.name.endswith(".chain") or ".log" not in path.name:
            continue
        stem = path.name.split(".log")[0]
        if (path.parent / f"{stem}.manifest.json").exists():
            continue
        try:
            yield dt.date(int(path.parent.parent.name), int(path.parent.name), int(stem[:2]))
        except ValueError:
            continue
