"""Compliance status per device-day: states, figures from manifests, cache, verdicts, parse rate."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from compliance_support import DAY, LATER, Data, DownTsa, make_data

from logmaster.archive.stamps import retry_stamps
from logmaster.compliance.status import StatusCache, verify_and_record

NEXT = DAY + dt.timedelta(days=1)


@pytest.fixture
def data(tmp_path: Path) -> Data:
    return make_data(tmp_path)


def _age_folder(data: Data, device: str, day: dt.date = DAY) -> Path:
    folder = data.part(device, day).folder
    then = time.time() - 60
    os.utime(folder, (then, then))
    return folder


def test_states_and_figures(data: Data) -> None:
    """no_data, open, sealed: lines, the built-in TSA as not accredited, gaps from the manifest."""
    data.write("gw1", n=40)
    data.write("gw1", day=NEXT, n=10)
    [result] = data.seal(DAY)
    assert result.state == "sealed"
    cache = StatusCache(data.settings)
    first = DAY - dt.timedelta(days=1)
    by_day = {s.day: s for s in cache.statuses(first, NEXT, ["gw1"], fill=True)}
    assert by_day[first].state == "no_data" and by_day[first].lines == 0
    sealed = by_day[DAY]
    assert sealed.state == "sealed" and sealed.sealed and sealed.stamped
    assert sealed.lines == 40 and sealed.parts == 1
    assert (sealed.tsa, sealed.accredited, sealed.stamp_mode) == ("builtin", False, "manifest")
    # 40 lines one second apart from midnight: the rest of the day is one declared gap.
    assert len(sealed.gaps) == 1 and sealed.gaps[0]["to"] == "2026-11-29T00:00:00+03:00"
    assert sealed.gap_seconds == sealed.gaps[0]["seconds"] > 86_000
    assert sealed.first_received == "2026-11-28T00:00:00+03:00"
    opened = by_day[NEXT]
    assert opened.state == "open" and not opened.sealed and opened.lines == 10
    assert opened.to_json()["day"] == NEXT.isoformat()


def test_stamp_pending_then_stamped(data: Data) -> None:
    """A failed stamp shows as stamp_pending until the retry writes the token."""
    data.write("gw1", n=5)
    tsa = DownTsa()
    [result] = data.seal(stamper=tsa)
    assert result.state == "stamp_pending" and tsa.calls == 1
    cache = StatusCache(data.settings)
    st = cache.day("gw1", DAY)
    assert st.state == "stamp_pending" and st.sealed and not st.stamped
    done, left = retry_stamps(data.settings, force=True)
    assert (done, left) == (1, 0)
    st = cache.day("gw1", DAY)
    assert st.state == "sealed" and st.stamped


def test_declared_silence(tmp_path: Path) -> None:
    """An approved device that sent nothing gets a sealed silence, shown as such."""
    from compliance_support import register

    data = make_data(tmp_path)
    # Registered before the day (a silence is declared only for days the device existed).
    register(data, "quiet", created=dt.datetime.combine(DAY, dt.time(), dt.UTC) - dt.timedelta(1))
    results = data.seal(DAY, now=LATER)
    assert [r.state for r in results] == ["silence"]
    st = StatusCache(data.settings).day("quiet", DAY)
    assert st.state == "silence" and st.declared_silence and st.lines == 0
    assert st.gap_seconds == 86_400


def _index(data: Data) -> None:
    from logmaster.index.indexer import Indexer

    indexer = Indexer.from_settings(data.settings)
    try:
        indexer.catch_up()
    finally:
        indexer.close()


def test_cache_hits_and_sees_new_files(data: Data) -> None:
    """A settled month is read from the cache; a new .tsr in its folder forces a rescan."""
    data.write("gw1", n=5)
    _index(data)  # indexed before sealing: the manifest's parse figures are final
    data.seal(stamper=DownTsa())
    folder = _age_folder(data, "gw1")
    cache = StatusCache(data.settings)
    assert cache.day("gw1", DAY).state == "stamp_pending"
    assert (cache.hits, cache.scans) == (0, 1)
    assert cache.day("gw1", DAY).state == "stamp_pending"
    assert (cache.hits, cache.scans) == (1, 1)
    # Another process (a second cache on the same file) sees the same rows.
    other = StatusCache(data.settings)
    assert other.day("gw1", DAY).state == "stamp_pending" and other.hits == 1
    retry_stamps(data.settings, force=True)
    assert folder.stat().st_mtime > time.time() - 30
    assert cache.day("gw1", DAY).state == "sealed"
    assert cache.scans == 2


def test_open_month_never_cached(data: Data) -> None:
    """Lines appended to an open day (no folder change) show at once."""
    data.write("gw1", n=5)
    _age_folder(data, "gw1")
    cache = StatusCache(data.settings)
    assert cache.day("gw1", DAY).lines == 5
    data.write("gw1", n=7, start=5)
    _age_folder(data, "gw1")
    assert cache.day("gw1", DAY).lines == 12
    assert cache.hits == 0


def test_verdicts_recorded_and_dropped_on_change(data: Data) -> None:
    """verify_and_record stores OK; a tampered file gives FAIL; a new seal state drops it."""
    path = data.write("gw1", n=20)
    data.seal()
    cache = StatusCache(data.settings)
    verify_and_record(data.settings, cache, "gw1", DAY, DAY)
    st = cache.day("gw1", DAY)
    assert st.verified == "OK" and st.verified_at is not None
    content = bytearray(path.read_bytes())
    content[50] ^= 1
    path.write_bytes(bytes(content))
    verify_and_record(data.settings, cache, "gw1", DAY, DAY)
    st = cache.day("gw1", DAY)
    assert st.verified == "FAIL" and any("line_changed" in r for r in st.verify_reasons)
    # A supplement arrives (a new part): the old verdict no longer describes the day.
    data.write("gw1", n=3, start=100)
    st = cache.day("gw1", DAY)
    assert st.state == "open" and st.verified is None
    assert cache.unverified(DAY, DAY) == []  # open days are not verified


def test_parse_failure_rate_from_index(data: Data) -> None:
    """Sealed before indexing: the rate comes from the index once it has read the day."""
    data.write("gw1", n=30)
    data.seal()
    cache = StatusCache(data.settings)
    st = cache.day("gw1", DAY)
    assert st.lines_indexed in (0, None) and st.parse_failure_rate is None
    _index(data)
    st = cache.day("gw1", DAY)
    assert st.lines_indexed == 30
    assert st.parse_failures is not None
    assert st.parse_failure_rate == round(st.parse_failures / 30, 6)
