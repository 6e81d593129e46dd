"""Helpers of the compliance tests: sealed device-days made by the real sealer.

The archive tests' helpers (``tests/archive``) write day files through the real writer and seal
them with the real keys and the built-in TSA; they are reused here, not copied.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "archive"))

import sqlalchemy as sa
from archive_helpers import DAY, ZONE, lines_for, write_batches
from seal_support import LATER, Data, DownTsa, make_data

from logmaster.collector.devices import add_device
from logmaster.db import Device, make_engine, migrate

__all__ = [
    "DAY",
    "LATER",
    "ZONE",
    "Data",
    "DownTsa",
    "days",
    "lines_for",
    "make_data",
    "register",
    "set_device",
    "write_batches",
]


def register(
    data: Data,
    slug: str,
    location: str = "",
    n: int = 1,
    timezone: str = "Europe/Istanbul",
    created: dt.datetime | None = None,
    last_seen: dt.datetime | None = None,
) -> None:
    """Register an approved device in the data directory's metadata database."""
    migrate(data.settings.db_url)
    engine = make_engine(data.settings.db_url)
    try:
        add_device(
            engine, slug, [f"10.9.{n // 250}.{n % 250 + 1}"], location=location, timezone=timezone
        )
        if created is not None or last_seen is not None:
            set_device(data, slug, created=created, last_seen=last_seen)
    finally:
        engine.dispose()


def set_device(
    data: Data,
    slug: str,
    created: dt.datetime | None = None,
    last_seen: dt.datetime | None = None,
    status: str | None = None,
) -> None:
    values: dict[str, object] = {}
    if created is not None:
        values["created_at"] = created
    if last_seen is not None:
        values["last_seen_at"] = last_seen
    if status is not None:
        values["status"] = status
    engine = make_engine(data.settings.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(Device).where(Device.slug == slug).values(**values))
    finally:
        engine.dispose()


def days(first: dt.date, n: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(n)]
