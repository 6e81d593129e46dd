"""Violations: each kind opens when its condition holds and resolves when it stops, once."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from compliance_support import DAY, Data, DownTsa, make_data, register, set_device
from sqlalchemy.orm import Session

from logmaster.archive.stamps import retry_stamps
from logmaster.compliance.checks import learned_threshold
from logmaster.compliance.evaluator import Evaluator
from logmaster.compliance.status import DayStatus
from logmaster.compliance.violations import Violation
from logmaster.config import load_settings
from logmaster.db import make_engine, migrate

UTC = dt.UTC
# DAY (28.11.2026) ends at 29.11 00:00 Istanbul = 28.11 21:00 UTC; the seal deadline (6 h) is
# 29.11 03:00 UTC.
CREATED = dt.datetime(2026, 11, 27, 22, 0, tzinfo=UTC)  # 28.11 01:00 local: DAY is its first
AFTER_DEADLINE = dt.datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
BEFORE_DEADLINE = dt.datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def _data(tmp_path: Path, **compliance: Any) -> Data:
    c = {"verify_budget_s": 0, **compliance}
    return make_data(tmp_path, compliance=c)


_made: list[Evaluator] = []


@pytest.fixture(autouse=True)
def _close_evaluators() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def _evaluator(data: Data) -> Evaluator:
    migrate(data.settings.db_url)
    ev = Evaluator(data.settings)
    _made.append(ev)
    return ev


def _open(ev: Evaluator) -> dict[tuple[str, str], Violation]:
    with Session(ev.engine) as s:
        rows = s.scalars(sa.select(Violation).where(Violation.resolved_at.is_(None)))
        return {(v.kind, v.subject): v for v in rows}


def _all(ev: Evaluator) -> list[Violation]:
    with Session(ev.engine) as s:
        return list(s.scalars(sa.select(Violation).order_by(Violation.id)))


def test_seal_overdue_opens_after_deadline_and_resolves(tmp_path: Path) -> None:
    """Lines not sealed 6 h after local midnight: one critical violation, resolved by sealing."""
    data = _data(tmp_path)
    register(data, "gw1", created=CREATED, last_seen=BEFORE_DEADLINE)
    data.write("gw1", n=10)
    ev = _evaluator(data)
    assert ev.run_once(BEFORE_DEADLINE).opened == []
    out = ev.run_once(AFTER_DEADLINE)
    [opened] = [v for v in out.opened if v["kind"] == "seal_overdue"]
    assert opened["subject"] == "gw1 2026-11-28" and opened["severity"] == "critical"
    assert "28.11.2026" in opened["message"] and "mühürlenmedi" in opened["message_tr"]
    assert ev.run_once(AFTER_DEADLINE + dt.timedelta(minutes=1)).opened == []  # not twice
    data.seal()
    out = ev.run_once(AFTER_DEADLINE + dt.timedelta(minutes=2))
    assert [v["subject"] for v in out.resolved] == ["gw1 2026-11-28"]
    [row] = [v for v in _all(ev) if v.kind == "seal_overdue"]
    assert row.resolved_at is not None and row.opened_at is not None


def test_missing_declared_silence_is_overdue(tmp_path: Path) -> None:
    """An approved device with neither lines nor a declared silence is overdue too."""
    data = _data(tmp_path)
    register(data, "quiet", created=CREATED, last_seen=AFTER_DEADLINE)
    ev = _evaluator(data)
    out = ev.run_once(AFTER_DEADLINE)
    [v] = [v for v in out.opened if v["kind"] == "seal_overdue"]
    assert "no day file and no declared silence" in v["message"]
    assert [r.state for r in data.seal(DAY)] == ["silence"]
    assert [v["kind"] for v in ev.run_once(AFTER_DEADLINE).resolved] == ["seal_overdue"]


def test_stamp_pending_longer_than_limit(tmp_path: Path) -> None:
    """A stamp missing 24 h after sealing opens stamp_pending; the token resolves it."""
    data = _data(tmp_path)
    register(data, "gw1", created=CREATED)
    data.write("gw1", n=5)
    sealed_at = AFTER_DEADLINE
    data.seal(stamper=DownTsa(), now=sealed_at)
    ev = _evaluator(data)
    later = sealed_at + dt.timedelta(hours=23)
    set_device(data, "gw1", last_seen=later)
    assert "stamp_pending" not in {v["kind"] for v in ev.run_once(later).opened}
    later = sealed_at + dt.timedelta(hours=25)
    set_device(data, "gw1", last_seen=later)
    [v] = [v for v in ev.run_once(later).opened if v["kind"] == "stamp_pending"]
    assert v["severity"] == "warning" and v["details"]["tsa"] == "builtin"
    retry_stamps(data.settings, force=True)
    resolved = ev.run_once(later + dt.timedelta(minutes=1)).resolved
    assert [v["kind"] for v in resolved] == ["stamp_pending"]


def test_device_silent_configured_threshold(tmp_path: Path) -> None:
    """A per-device threshold: silent past it opens, a new line resolves."""
    data = _data(tmp_path, silence_thresholds={"gw1": 600}, clock_skew_max_s=10**6)
    now = AFTER_DEADLINE
    register(data, "gw1", created=CREATED, last_seen=now - dt.timedelta(minutes=9))
    data.write("gw1", n=5)
    data.seal()
    ev = _evaluator(data)
    assert ev.run_once(now).opened == []
    set_device(data, "gw1", last_seen=now - dt.timedelta(minutes=11))
    [v] = ev.run_once(now).opened
    assert v["kind"] == "device_silent" and v["subject"] == "gw1"
    assert v["details"]["threshold_s"] == 600 and v["details"]["threshold_source"] == "configured"
    assert "11 min" in v["message"]
    set_device(data, "gw1", last_seen=now)
    assert [v["kind"] for v in ev.run_once(now).resolved] == ["device_silent"]


def _day(day: int, lines: int, gaps: list[tuple[int, int]]) -> DayStatus:
    """A sealed day from 00:00 to 23:59 local with ``gaps`` (start hour, seconds) inside."""
    base = dt.datetime(2026, 11, day, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    return DayStatus(
        "gw1",
        base.date(),
        state="sealed",
        lines=lines,
        first_received=base.isoformat(),
        last_received=(base + dt.timedelta(hours=23, minutes=59)).isoformat(),
        gaps=[
            {
                "from": (base + dt.timedelta(hours=h)).isoformat(),
                "to": (base + dt.timedelta(hours=h, seconds=s)).isoformat(),
                "seconds": s,
            }
            for h, s in gaps
        ],
    )


def test_learned_threshold(tmp_path: Path) -> None:
    """Median of the days' longest gaps x1.5, or 30 mean gaps; bounded; default when unknown."""
    settings = load_settings(None, data_dir=tmp_path)
    # Chatty: a line every ~10 s and no long gap -> 300 s, raised to the 900 s floor.
    assert learned_threshold(settings, [_day(d, 8640, []) for d in range(1, 8)]) == (
        900,
        "learned from 7 days",
    )
    # Quiet nights of 2 h (one odd day of 10 h does not move the median).
    days = [_day(d, 5000, [(2, 7200)]) for d in range(1, 8)] + [_day(8, 5000, [(1, 36000)])]
    assert learned_threshold(settings, days)[0] == 10_800
    # Sparse: 100 lines over 23:59 h -> mean gap 86,340 / 99 s -> 30 x = 26,163 s.
    assert learned_threshold(settings, [_day(d, 100, []) for d in range(1, 5)])[0] == 26_163
    assert learned_threshold(settings, [_day(1, 100, [])]) == (4 * 3600, "default")


def test_clock_skew(tmp_path: Path) -> None:
    """The test lines say 10:00 while received from 00:00: a 10 h skew is a violation."""
    data = _data(tmp_path)
    register(data, "gw1", created=CREATED, last_seen=AFTER_DEADLINE)
    data.write("gw1", n=20)
    data.seal()
    ev = _evaluator(data)
    [v] = [v for v in ev.run_once(AFTER_DEADLINE).opened if v["kind"] == "clock_skew"]
    assert v["details"]["median_s"] > 35_000 and "NTP" in v["message"]


def test_archive_disk(tmp_path: Path) -> None:
    """statvfs of the archive's file system against the thresholds (real numbers)."""
    data = _data(tmp_path, disk_warn_percent=0.001, disk_critical_percent=100)
    ev = _evaluator(data)
    [v] = ev.run_once(AFTER_DEADLINE).opened
    assert v["kind"] == "archive_disk" and v["severity"] == "warning"
    assert 0 < v["details"]["used_percent"] <= 100 and v["details"]["free_bytes"] > 0
    ev.settings.compliance.disk_warn_percent = 100
    assert [x["kind"] for x in ev.run_once(AFTER_DEADLINE).resolved] == ["archive_disk"]


def test_retention_oldest_day_missing(tmp_path: Path) -> None:
    """A device older than the retention period must still have the oldest required day."""
    data = _data(tmp_path)
    now = AFTER_DEADLINE
    register(data, "old", created=now - dt.timedelta(days=900), last_seen=now)
    ev = _evaluator(data)
    ev.settings.compliance.window_days = 3  # keep the test to the retention check
    out = ev.run_once(now)
    [v] = [v for v in out.opened if v["kind"] == "retention_at_risk"]
    oldest = dt.date.fromisoformat(v["day"])
    assert oldest == dt.date(2026, 11, 29) - dt.timedelta(days=730)
    assert v["details"]["reason"] == "oldest_day_missing" and v["severity"] == "critical"
    data.write("old", day=oldest, n=3)
    assert [x["kind"] for x in ev.run_once(now).resolved] == ["retention_at_risk"]


def test_retention_below_minimum(tmp_path: Path) -> None:
    """A device whose retention was set below 730 days (explicitly allowed) is at risk."""
    from logmaster.archive.retention import set_retention

    data = _data(tmp_path)
    register(data, "short", created=CREATED, last_seen=AFTER_DEADLINE)
    ev = _evaluator(data)
    with Session(ev.engine) as s:
        set_retention(
            s, data.settings, "short", 365, actor="admin", allow_short_retention=True, reason="t"
        )
    [v] = [v for v in ev.run_once(AFTER_DEADLINE).opened if v["kind"] == "retention_at_risk"]
    assert v["details"] == {"retention_days": 365, "reason": "below_minimum"}
    assert "730" in v["message"] and "365" in v["message_tr"]


def test_evaluator_loop_runs_and_stops(tmp_path: Path) -> None:
    """run() passes until stopped; a pass survives an unreadable archive."""
    data = _data(tmp_path, interval_s=5)
    ev = _evaluator(data)
    stop = threading.Event()
    t = threading.Thread(target=ev.run, args=(stop,))
    t.start()
    try:
        deadline = dt.datetime.now(UTC) + dt.timedelta(seconds=10)
        while ev.passes == 0 and dt.datetime.now(UTC) < deadline:
            stop.wait(0.05)
    finally:
        stop.set()
        t.join(10)
    assert ev.passes >= 1 and not t.is_alive() and ev.failures == 0


@pytest.fixture
def pg_url() -> Iterator[str]:
    dsn = "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"lm_viol_{secrets.token_hex(5)}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_postgres_one_open_violation_per_subject(tmp_path: Path, pg_url: str) -> None:
    """On PostgreSQL: open, resolve, reopen as a new row; the unique index refuses a twin."""
    data = make_data(tmp_path, database_url=pg_url, compliance={"verify_budget_s": 0})
    register(data, "gw1", created=CREATED, last_seen=AFTER_DEADLINE)
    data.write("gw1", n=5)
    ev = _evaluator(data)
    assert {v["kind"] for v in ev.run_once(AFTER_DEADLINE).opened} >= {"seal_overdue"}
    data.seal()
    ev.run_once(AFTER_DEADLINE)
    engine = make_engine(pg_url)
    try:
        with Session(engine) as s:
            s.add_all(
                [
                    Violation(
                        kind="archive_disk",
                        subject="archive",
                        severity="warning",
                        message="m",
                        message_tr="m",
                        details={},
                    )
                    for _ in range(2)
                ]
            )
            with pytest.raises(sa.exc.IntegrityError):
                s.commit()
    finally:
        engine.dispose()
    [row] = [v for v in _all(ev) if v.kind == "seal_overdue"]
    assert row.resolved_at is not None
