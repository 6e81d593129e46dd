"""The sealer process's /metrics: overdue device-days and queued stamps, scraped over HTTP."""

from __future__ import annotations

import datetime as dt
import urllib.request
from pathlib import Path

from compliance_support import DownTsa, make_data, register
from prometheus_client.parser import text_string_to_metric_families

from logmaster.archive.stamps import retry_stamps
from logmaster.compliance.evaluator import Evaluator
from logmaster.compliance.service import SealMetrics, serve_metrics
from logmaster.db import migrate
from support import free_port

UTC = dt.UTC
# DAY (28.11.2026) ends at 28.11 21:00 UTC (Istanbul midnight); seal.delay_s is 900.
CREATED = dt.datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
NOT_DUE = dt.datetime(2026, 11, 28, 21, 10, tzinfo=UTC)
DUE = dt.datetime(2026, 11, 28, 21, 20, tzinfo=UTC)


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        s.name: s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name.startswith("logmaster_seal_")
    }


def test_overdue_days_and_pending_stamps_follow_the_archive(tmp_path: Path) -> None:
    """Due and unsealed counts once the day is over + delay_s; sealing with a dead TSA turns it
    into a queued stamp; the stamp obtained empties the queue."""
    data = make_data(tmp_path, compliance={"verify_budget_s": 0})
    register(data, "gw1", created=CREATED, last_seen=NOT_DUE)
    register(data, "quiet", n=2, created=CREATED, last_seen=NOT_DUE)  # approved, sent nothing
    data.write("gw1", n=10)
    migrate(data.settings.db_url)
    ev = Evaluator(data.settings)
    try:
        port = free_port()
        serve_metrics(f"127.0.0.1:{port}", SealMetrics(data.settings, ev))
        first = _scrape(port)
        assert "logmaster_seal_overdue_device_days" not in first  # no pass yet: unknown
        assert first["logmaster_seal_pending_stamps"] == 0
        ev.run_once(NOT_DUE)
        assert _scrape(port)["logmaster_seal_overdue_device_days"] == 0
        ev.run_once(DUE)  # gw1's lines and quiet's missing silence are both due now
        assert _scrape(port)["logmaster_seal_overdue_device_days"] == 2
        states = sorted((r.device, r.state) for r in data.seal(stamper=DownTsa(), now=DUE))
        assert states == [("gw1", "stamp_pending"), ("quiet", "stamp_pending")]
        ev.run_once(DUE + dt.timedelta(minutes=1))
        after = _scrape(port)
        assert after["logmaster_seal_overdue_device_days"] == 0
        assert after["logmaster_seal_pending_stamps"] == 2  # one per manifest (stamp mode day)
        retry_stamps(data.settings, force=True)  # the built-in TSA answers
        assert _scrape(port)["logmaster_seal_pending_stamps"] == 0
    finally:
        ev.close()
