"""The daily schedule: each day sealed after local midnight + delay; missed days caught up."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from archive_helpers import DAY
from seal_support import make_data

from logmaster.archive.seal_status import seal_status
from logmaster.archive.sealer import Sealer
from logmaster.collector.devices import add_device
from logmaster.db import make_engine, migrate

ZONE = ZoneInfo("Europe/Istanbul")
D1 = DAY - dt.timedelta(days=4)
D2 = DAY - dt.timedelta(days=3)
D3 = DAY - dt.timedelta(days=2)


def at_local(day: dt.date, hh: int, mm: int, zone: ZoneInfo = ZONE) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), zone).astimezone(dt.UTC)


def test_schedule_catches_up_then_waits_for_the_delay(tmp_path: Path) -> None:
    """First pass seals every missed day; a day is sealed only after midnight + delay."""
    data = make_data(tmp_path, seal={"delay_s": 900})
    data.write("gw1", D1)
    data.write("gw1", D2)
    data.write("gw1", D3)
    data.write("gw2", D1)
    sealer = Sealer(data.settings)
    # The evening of D3: D1 and D2 are due (missed while down), D3 is not over.
    assert sealer.run_once(at_local(D3, 22, 0)) == 3
    state = {d: seal_status(data.root, "gw1", d).state for d in (D1, D2, D3)}
    assert state == {D1: "sealed", D2: "sealed", D3: "unsealed"}
    assert seal_status(data.root, "gw2", D1).state == "sealed"
    # 00:10 the next day: within the delay.
    assert sealer.run_once(at_local(D3 + dt.timedelta(days=1), 0, 10)) == 0
    # 00:16: sealed.
    assert sealer.run_once(at_local(D3 + dt.timedelta(days=1), 0, 16)) == 1
    assert seal_status(data.root, "gw1", D3).state == "sealed"
    # Nothing was indexed: nothing compressed.
    assert data.part("gw1", D1).log.exists()


def test_schedule_follows_each_device_zone(tmp_path: Path) -> None:
    """A device in New York is sealed after New York's midnight, not Istanbul's."""
    data = make_data(tmp_path, seal={"delay_s": 0})
    migrate(data.settings.db_url)
    engine = make_engine(data.settings.db_url)
    add_device(engine, "ny", ["10.1.1.1"], timezone="America/New_York")
    engine.dispose()
    data.write("ny", D3)  # written with Istanbul times; only the schedule's zone matters here
    sealer = Sealer(data.settings)
    sealer.first_pass = False
    ny = ZoneInfo("America/New_York")
    assert sealer.run_once(at_local(D3, 23, 59, ny)) == 0
    assert sealer.run_once(at_local(D3 + dt.timedelta(days=1), 0, 1, ny)) >= 1
    assert seal_status(data.root, "ny", D3).state == "sealed"
