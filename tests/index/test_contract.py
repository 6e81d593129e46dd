"""The index backend contract, run against every backend in ``logmaster.index.BACKENDS``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from logmaster.index.base import Batch, IndexBackend, IndexedEvent, SearchRequest, Session
from logmaster.index.fields import split_event
from logmaster.index.query import parse_query
from logmaster.index.sessions import Timeouts, session_ops

UTC = ZoneInfo("UTC")
DAY = dt.date(2026, 11, 28)
T0 = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
LINE = 100  # bytes per archive line in these tests
GW, FW = "gw-istanbul", "fw-ankara"

OpenIndex = Callable[[], IndexBackend]  # the open_index fixture of conftest.py


def at(hours: int = 10, minutes: int = 0, seconds: float = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=dt.UTC) + dt.timedelta(
        seconds=seconds
    )


def path(device: str, day: dt.date = DAY) -> str:
    return f"{device}/{day:%Y}/{day:%m}/{day:%d}.log"


def event(
    offset: int, stamp: dt.datetime, fields: dict[str, Any], device: str = GW, day: dt.date = DAY
) -> dict[str, Any]:
    """A parsed event as the indexer hands it over (device, archive file and offset added)."""
    return {
        "@timestamp": stamp,
        "observer.name": device,
        "log.file.path": path(device, day),
        "log.offset": offset,
        **fields,
    }


def batch(events: list[dict[str, Any]], day: dt.date = DAY, sessions: bool = True) -> Batch:
    """The batch the indexer would write for these events (sessions and checkpoints included)."""
    out = Batch()
    for ev in events:
        row, extra = split_event(ev)
        out.events.append(IndexedEvent(day, row, extra))
        file, offset = ev["log.file.path"], ev["log.offset"]
        if sessions:
            out.sessions.extend(session_ops(ev, file, offset, day, Timeouts()))
        _, end, lines, failures = out.files.get(file, (day, 0, 0, 0))
        out.files[file] = (day, max(end, offset + LINE), lines + 1, failures)
    return out


def write(index: IndexBackend, events: list[dict[str, Any]], day: dt.date = DAY) -> None:
    index.write(batch(events, day))


def request(
    query: str = "",
    start: dt.datetime = T0 - dt.timedelta(hours=1),
    end: dt.datetime = T0 + dt.timedelta(hours=1),
    **kw: Any,
) -> SearchRequest:
    return SearchRequest(parse_query(query, now=NOW, zone=UTC), start, end, **kw)


def offsets(index: IndexBackend, query: str = "", **kw: Any) -> set[int]:
    """log.offset of every event the query finds (in one page, checked to be complete)."""
    page = index.search(request(query, limit=1000, **kw))
    assert page.cursor is None
    found = [h.event["log.offset"] for h in page.hits]
    assert len(found) == len(set(found)), "an event was returned twice"
    return set(found)


CORPUS: list[dict[str, Any]] = [
    event(
        0,
        T0 + dt.timedelta(microseconds=123_456),
        {
            "event.created": T0 + dt.timedelta(seconds=1, microseconds=7),
            "event.dataset": "mikrotik.firewall",
            "event.action": "accept",
            "log.syslog.severity.code": 6,
            "log.syslog.facility.code": 16,
            "log.syslog.appname": "firewall",
            "source.ip": "192.168.88.10",
            "source.port": 51514,
            "source.mac": "aa:bb:cc:dd:ee:01",
            "source.nat.ip": "203.0.113.5",
            "source.nat.port": 40000,
            "destination.ip": "10.0.0.1",
            "destination.port": 443,
            "network.transport": "tcp",
            "network.bytes": 60,
            "observer.ingress.interface.name": "bridge",
            "tags": ["nat", "wan"],
            "message": "forward: in:bridge out:ether1, src-mac aa:bb:cc:dd:ee:01, proto TCP (SYN), "
            "192.168.88.10:51514->10.0.0.1:443, NAT (192.168.88.10:51514->"
            "203.0.113.5:40000)->10.0.0.1:443, len 60",
        },
    ),
    event(
        100,
        T0 + dt.timedelta(seconds=10),
        {
            "event.dataset": "mikrotik.hotspot",
            "event.action": "login",
            "event.outcome": "success",
            "log.syslog.severity.code": 6,
            "log.syslog.appname": "hotspot",
            "user.name": "Ayse.Yilmaz",
            "source.ip": "192.168.88.20",
            "source.mac": "aa:bb:cc:dd:ee:02",
            "message": "hotspot,account,info Ayse.Yilmaz (192.168.88.20): logged in — Ayşe",
        },
    ),
    event(
        200,
        T0 + dt.timedelta(seconds=20),
        {
            "event.dataset": "netfilter",
            "log.syslog.severity.code": 4,
            "rule.name": "allow-dns",
            "source.ip": "2001:db8::10",
            "source.port": 53000,
            "destination.ip": "2001:db8:1::1",
            "destination.port": 53,
            "network.transport": "udp",
            "message": "allow-dns IN=eth0 OUT= SRC=2001:db8::10 DST=2001:db8:1::1 PROTO=UDP "
            "SPT=53000 DPT=53",
        },
    ),
    event(
        300,
        T0 + dt.timedelta(seconds=30),
        {
            "event.dataset": "dhcpd",
            "event.action": "dhcp-assign",
            "log.syslog.appname": "dhcpd",
            "client.ip": "192.168.88.20",
            "client.mac": "aa:bb:cc:dd:ee:02",
            "host.hostname": "laptop-ayse",
            "message": "DHCPACK on 192.168.88.20 to aa:bb:cc:dd:ee:02 (laptop-ayse) via eth1",
        },
    ),
    event(
        400,
        T0 + dt.timedelta(seconds=40),
        {
            "event.dataset": "sshd",
            "event.action": "login-failed",
            "event.outcome": "failure",
            "log.syslog.severity.code": 5,
            "log.syslog.facility.code": 4,
            "host.name": "SRV-01",
            "log.syslog.appname": "sshd",
            "source.ip": "198.51.100.7",
            "source.port": 2222,
            "message": "Failed password for invalid user admin from 198.51.100.7 port 2222 ssh2",
        },
    ),
    event(
        500,
        T0 + dt.timedelta(seconds=50),
        device=FW,
        fields={
            "log.syslog.severity.code": 2,
            "message": "System reboot requested by operator -> shutting down",
        },
    ),
    event(
        600,
        T0 + dt.timedelta(seconds=60),
        device=FW,
        fields={
            "event.dataset": "nginx.access",
            "source.ip": "203.0.113.77",
            "destination.ip": "192.0.2.80",
            "destination.port": 443,
            "http.request.method": "POST",
            "url.path": "/login",
            "http.response.status_code": 403,
            "network.bytes": 1500,
            "event.code": "106023",
            "rule.id": "n/a",
            "message": 'POST /login HTTP/1.1 403 1500 "curl/8.5.0" notify admin@example.com',
        },
    ),
]
ALL = {e["log.offset"] for e in CORPUS}


# -- events -------------------------------------------------------------------------------------


def test_events_round_trip_field_for_field(index: IndexBackend) -> None:
    """Every field comes back with its value and type: IPs, ports, MACs, times, extras."""
    write(index, CORPUS)
    page = index.search(request(limit=100))
    assert page.cursor is None
    by_offset = {h.event["log.offset"]: h for h in page.hits}
    assert set(by_offset) == ALL
    for expected in CORPUS:
        hit = by_offset[expected["log.offset"]]
        assert hit.day == DAY
        assert hit.event == expected
        assert index.get(hit.day, hit.id) == expected
    assert index.days() == [DAY]


def test_awkward_text_round_trips_and_is_found(index: IndexBackend) -> None:
    """Tabs, backslashes, quotes, %, _ and Turkish letters survive storage and search."""
    text = "Şifre\thatalı: C:\\Temp\\x.log \"q\" 'q' 100% _under_ \\N end"
    ev = event(
        0,
        T0,
        {
            "message": text,
            "user.name": "ÇAĞRI",
            "note": text,
            "nested": {"list": [1, "a\\b"], "ok": True},
        },
    )
    write(index, [ev])
    assert index.search(request()).hits[0].event == ev
    assert offsets(index, "şifre") == {0}
    assert offsets(index, "SIFRE") == {0}  # diacritics folded, as FTS5 does
    assert offsets(index, "ŞİF*") == {0}
    assert offsets(index, "hatalı") == {0}
    assert offsets(index, "hatali") == set()  # dotless ı is a letter of its own
    assert offsets(index, "user:çağri") == {0}  # case-insensitive beyond ASCII
    assert offsets(index, "user:ÇAĞRI") == {0}
    assert offsets(index, '"C:\\\\Temp"') == {0}
    assert offsets(index, '"100%"') == {0}
    assert offsets(index, "under") == {0}
    assert offsets(index, "note:*\\N*") == {0}
    assert offsets(index, "note:*\\z*") == set()
    assert offsets(index, "note:*100%*") == {0}
    assert offsets(index, "note:*100x*") == set()


def test_get_unknown_event_is_none(index: IndexBackend) -> None:
    """get() of an unknown id or of a day without a partition is None."""
    write(index, CORPUS[:1])
    hit = index.search(request()).hits[0]
    assert index.get(DAY, hit.id + 1000) is None
    assert index.get(DAY + dt.timedelta(days=5), hit.id) is None


QUERIES: list[tuple[str, set[int]]] = [
    # words and phrases of the message
    ("password", {400}),
    ("PASSWORD", {400}),
    ('"invalid user admin"', {400}),
    ('"admin user invalid"', set()),
    ("admin ssh2", {400}),
    ("admin", {400, 600}),  # also inside admin@example.com
    ('"example.com"', {600}),
    ('"198.51.100.7"', {400}),
    ("pass*", {400}),
    ("logg*", {100}),
    ("10.0.0*", {0}),
    ('"logged in"', {100}),
    ('"->"', {0, 500}),  # no word at all: the text itself
    ("reboot", {500}),
    # text fields: case-insensitive equality, wildcards
    ("host:srv-01", {400}),
    ("user:ayse.yilmaz", {100}),
    ("user:AYSE.YILMAZ", {100}),
    ("network.transport:TCP", {0}),
    ("host:srv*", {400}),
    ("app:dhcp?", {300}),
    ("device:fw-*", {500, 600}),
    ("dataset:mikrotik.*", {0, 100}),
    ("action:dhcp-assign", {300}),
    # fields outside the columns (extra)
    ("http.request.method:post", {600}),
    ("url.path:/log*", {600}),
    ("observer.ingress.interface.name:bridge", {0}),
    ("network.bytes:*", {0, 600}),
    ("network.bytes:>100", {600}),
    ("network.bytes:[50 TO 2000]", {0, 600}),
    ("http.response.status_code:[400 TO 499]", {600}),
    ("event.code:>=106000", {600}),  # a number written as a string
    ("rule.id:<10", set()),  # "n/a" is not a number, not zero
    # IP columns: addresses and networks, IPv4 and IPv6
    ("src:192.168.88.0/24", {0, 100}),
    ("ip:192.168.88.20", {100, 300}),
    ("ip:10.0.0.1", {0}),
    ("ip:10.0.0.0/8", {0}),
    ("nat.ip:203.0.113.0/24", {0}),
    ("ip:203.0.113.0/24", {0, 600}),
    ("ip:0.0.0.0/0", {0, 100, 300, 400, 600}),
    ("src:2001:db8::10", {200}),
    ("ip:2001:db8::/32", {200}),
    ("dst:2001:db8:1::/48", {200}),
    ("src:2001:db8:1::/48", set()),
    # integers
    ("src.port:[2000 TO 3000]", {400}),
    ("destination.port:<100", {200}),
    ("destination.port:>=443", {0, 600}),
    ("destination.port:{53 TO 443}", set()),
    ("destination.port:{53 TO 443]", {0, 600}),
    ("sev:<=4", {200, 500}),
    ("severity:6", {0, 100}),
    # MACs, through the mac: alias (source.mac or client.mac)
    ("mac:aa:bb:cc:dd:ee:02", {100, 300}),
    ("mac:AA-BB-CC-DD-EE-02", {100, 300}),
    ("mac:aa:bb:cc:dd:ee:0*", {0, 100, 300}),
    # times
    ("@timestamp:>=2026-11-28T10:00:40Z", {400, 500, 600}),
    ("event.created:<2026-11-28T10:00:15Z", {0}),
    # exists, NOT (events without the field count as not matching), OR, grouping
    ("user:*", {100}),
    ("client.ip:*", {300}),
    ("NOT host:srv-01", ALL - {400}),
    ("-src:192.168.0.0/16", ALL - {0, 100}),
    ("NOT network.bytes:>100", ALL - {600}),
    ("NOT password", ALL - {400}),
    ("reboot OR password", {400, 500}),
    ("(admin AND NOT host:srv-01) OR reboot", {500, 600}),
    ("ip:192.168.88.20 AND NOT mac:aa:bb:cc:dd:ee:02", set()),
]


@pytest.mark.parametrize(("query", "expected"), QUERIES, ids=[q for q, _ in QUERIES])
def test_query_finds_exactly(index: IndexBackend, query: str, expected: set[int]) -> None:
    """Each query construct finds exactly the expected events."""
    write(index, CORPUS)
    assert offsets(index, query) == expected


def test_time_range_bounds_are_inclusive(index: IndexBackend) -> None:
    """[start, end] includes both ends; the neighbouring archive days are searched too."""
    write(index, CORPUS)
    # Archive day = the device's local day: the next day's file can hold this UTC day's events.
    tomorrow = DAY + dt.timedelta(days=1)
    write(
        index,
        [event(9000, T0 + dt.timedelta(seconds=30), {"message": "late"}, day=tomorrow)],
        tomorrow,
    )
    # Archive days further away are not searched for this range (they hold other times).
    far = DAY + dt.timedelta(days=3)
    write(index, [event(9100, T0 + dt.timedelta(seconds=30), {"message": "far"}, day=far)], far)
    first, last = CORPUS[0]["@timestamp"], CORPUS[-1]["@timestamp"]
    one = dt.timedelta(microseconds=1)
    assert offsets(index, start=first, end=last) == ALL | {9000}
    assert offsets(index, start=first + one, end=last) == ALL - {0} | {9000}
    assert offsets(index, start=first + one, end=last - one) == ALL - {0, 600} | {9000}
    assert offsets(index, start=first - dt.timedelta(hours=1), end=first - one) == set()
    assert offsets(index, start=last + one, end=last + dt.timedelta(hours=1)) == set()
    assert offsets(index, "late") == {9000}
    assert offsets(index, "far") == set()


def test_device_filter(index: IndexBackend) -> None:
    """devices= limits every read to those devices; an empty set finds nothing."""
    write(index, CORPUS)
    assert offsets(index, devices=frozenset({FW})) == {500, 600}
    assert offsets(index, "admin", devices=frozenset({GW, "other"})) == {400}
    assert offsets(index, devices=frozenset()) == set()
    assert index.device_counts(request(devices=frozenset({FW}))) == {FW: 2}
    assert index.device_counts(request(devices=frozenset())) == {}
    assert sum(n for _, n in index.histogram(request(devices=frozenset()), 4)) == 0


def test_cursor_paging_every_event_once_newest_first(index: IndexBackend) -> None:
    """Pages of 100 over 250 events give each once, newest first, despite writes in between."""
    events: dict[dt.date, list[dict[str, Any]]] = {}
    for i in range(250):
        # Three events a second (ties on ts), spread over two archive days.
        day = DAY + dt.timedelta(days=i % 2)
        ev = event(i * LINE, T0 + dt.timedelta(seconds=i // 3), {"message": f"flow {i}"}, day=day)
        events.setdefault(day, []).append(ev)
    for day, evs in events.items():
        write(index, evs, day)
    start, end = T0, T0 + dt.timedelta(hours=1)
    seen: list[tuple[dt.datetime, dt.date, int]] = []
    offsets_seen: list[tuple[dt.date, int]] = []
    cursor = None
    pages = []
    while True:
        page = index.search(SearchRequest(None, start, end, limit=100, cursor=cursor))
        pages.append(len(page.hits))
        for h in page.hits:
            seen.append((h.event["@timestamp"], h.day, h.id))
            offsets_seen.append((h.day, h.event["log.offset"]))
        if page.cursor is None:
            break
        cursor = page.cursor
        # New events between pages: newer ones, and ones tying with the last hit (written
        # later, so they sort before it): none may show up on the following pages.
        last = page.hits[-1]
        write(
            index,
            [
                event(
                    10_000 + len(seen),
                    T0 + dt.timedelta(minutes=30),
                    {"message": "newer"},
                    day=last.day,
                ),
                event(
                    20_000 + len(seen), last.event["@timestamp"], {"message": "tie"}, day=last.day
                ),
            ],
            last.day,
        )
    assert pages == [100, 100, 50]
    assert sorted(offsets_seen) == sorted(
        (d, e["log.offset"]) for d, evs in events.items() for e in evs
    )
    assert seen == sorted(seen, reverse=True)


def test_invalid_cursor_is_refused(index: IndexBackend) -> None:
    """A cursor that was not handed out raises ValueError."""
    write(index, CORPUS)
    with pytest.raises(ValueError, match="cursor"):
        index.search(request(cursor="not-a-cursor"))


def test_histogram_and_device_counts(index: IndexBackend) -> None:
    """Histogram buckets slice the range equally and sum to the matches; counts per device."""
    write(index, CORPUS)
    start, end = T0, T0 + dt.timedelta(seconds=70)
    buckets = index.histogram(request(start=start, end=end), 7)
    assert len(buckets) == 7
    width = buckets[1][0] - buckets[0][0]
    assert buckets[0][0] == start
    assert all(b[0] == start + i * width for i, b in enumerate(buckets))
    assert start + 7 * width > end
    expected = [0] * 7
    for ev in CORPUS:
        expected[(ev["@timestamp"] - start) // width] += 1
    assert [n for _, n in buckets] == expected
    assert sum(expected) == len(CORPUS)
    assert sum(n for _, n in index.histogram(request("admin", start=start, end=end), 3)) == 2
    assert index.device_counts(request()) == {GW: 5, FW: 2}
    assert index.device_counts(request("admin")) == {GW: 1, FW: 1}
    assert index.device_counts(request("nothing-matches-this")) == {}


# -- checkpoints and exactly-once ---------------------------------------------------------------


def test_checkpoints_move_with_writes_and_survive_reopen(open_index: OpenIndex) -> None:
    """A checkpoint is 0 before, the batch's offset after, and the same after reopening."""
    index = open_index()
    file = path(GW)
    assert index.checkpoint(file, DAY) == 0
    write(index, [e for e in CORPUS if e["observer.name"] == GW])
    assert index.checkpoint(file, DAY) == 500
    assert index.checkpoint(path(FW), DAY) == 0
    write(index, [event(500, T0 + dt.timedelta(minutes=5), {"message": "more"})])
    assert index.checkpoint(file, DAY) == 600
    assert index.parse_stats(DAY) == {file: (6, 0)}
    index.close()
    again = open_index()
    assert again.checkpoint(file, DAY) == 600
    assert again.parse_stats(DAY) == {file: (6, 0)}
    assert again.checkpoint(file, DAY + dt.timedelta(days=1)) == 0
    assert len(again.search(request()).hits) == 6


def test_checkpoint_only_batch_moves_checkpoint(index: IndexBackend) -> None:
    """A batch with a checkpoint but no events moves the checkpoint and makes the day known."""
    index.write(Batch(files={path(GW): (DAY, 4096, 0, 0)}))
    assert index.checkpoint(path(GW), DAY) == 4096
    assert index.parse_stats(DAY) == {path(GW): (0, 0)}
    assert index.days() == [DAY]


def test_parse_stats_add_up_per_file(index: IndexBackend) -> None:
    """Lines and parse failures add up per archive file of the day."""
    first = batch(CORPUS[:3])
    first.files[path(GW)] = (DAY, 300, 3, 1)
    index.write(first)
    second = batch(CORPUS[3:])
    second.files[path(GW)] = (DAY, 500, 2, 2)
    index.write(second)
    assert index.parse_stats(DAY) == {path(GW): (5, 3), path(FW): (2, 0)}
    assert index.parse_stats(DAY + dt.timedelta(days=1)) == {}


def _sessions_snapshot(index: IndexBackend) -> list[Session]:
    return index.sessions("nat", T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1))


def test_failed_write_changes_nothing_and_retry_writes_once(
    index: IndexBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch failing after its sessions leaves the checkpoint; the retry stores each once."""
    applied = index._apply_sessions  # type: ignore[attr-defined]

    def then_fail(*args: Any) -> None:
        applied(*args)
        raise RuntimeError("disk full")

    monkeypatch.setattr(index, "_apply_sessions", then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write(index, CORPUS)
    monkeypatch.undo()
    assert index.checkpoint(path(GW), DAY) == 0
    assert index.parse_stats(DAY) == {}
    assert offsets(index) == set()
    write(index, CORPUS)  # the indexer retries the same batch
    write(index, [event(700, T0 + dt.timedelta(seconds=70), {"message": "next"})])
    assert [h.event["log.offset"] for h in index.search(request(limit=100)).hits] == [
        700,
        600,
        500,
        400,
        300,
        200,
        100,
        0,
    ]
    assert index.checkpoint(path(GW), DAY) == 800
    assert len(_sessions_snapshot(index)) == 1
    assert len(index.sessions("dhcp", T0, T0 + dt.timedelta(hours=1))) == 1
    assert len(index.sessions("hotspot", T0, T0 + dt.timedelta(hours=1))) == 1


def test_row_failing_mid_batch_stores_no_event(index: IndexBackend) -> None:
    """A row the store refuses fails the batch: none of its events or checkpoints remain."""
    bad = event(350, T0 + dt.timedelta(seconds=35), {"source.ip": "not-an-ip", "message": "x"})
    with pytest.raises((ValueError, psycopg.Error)):
        write(index, [*CORPUS[:3], bad, *CORPUS[3:]])
    assert offsets(index) == set()
    assert index.checkpoint(path(GW), DAY) == 0
    write(index, CORPUS)
    assert offsets(index) == ALL
    assert len(_sessions_snapshot(index)) == 1


def test_text_with_nul_is_stored_and_found(index: IndexBackend) -> None:
    """A NUL inside a message or an extra field does not stop the batch."""
    write(index, [event(0, T0, {"message": "bad \x00 byte here", "weird.field": "a\x00b"})])
    hit = index.search(request("byte")).hits[0]
    assert hit.event["message"].replace("\x00", "").replace("\ufffd", "") == "bad  byte here"
    assert index.checkpoint(path(GW), DAY) == LINE


# -- sessions -----------------------------------------------------------------------------------

NAT = {"source.nat.ip": "203.0.113.5", "network.transport": "tcp"}


def nat(
    offset: int,
    stamp: dt.datetime,
    inner: str,
    port: int,
    nat_port: int,
    action: str | None = None,
    more: dict[str, Any] | None = None,
    day: dt.date = DAY,
) -> dict[str, Any]:
    fields = {
        **NAT,
        "source.ip": inner,
        "source.port": port,
        "source.nat.port": nat_port,
        "message": f"{action or 'srcnat'} {inner}:{port}->203.0.113.5:{nat_port}",
        **(more or {}),
    }
    if action:
        fields["event.action"] = action
    return event(offset, stamp, fields, day=day)


def dhcp(offset: int, stamp: dt.datetime, action: str, mac: str) -> dict[str, Any]:
    return event(
        offset,
        stamp,
        {
            "event.action": action,
            "client.ip": "192.168.88.20",
            "client.mac": mac,
            "host.hostname": "laptop-ayse",
            "message": f"{action} 192.168.88.20 {mac}",
        },
    )


def hotspot(offset: int, stamp: dt.datetime, action: str) -> dict[str, Any]:
    return event(
        offset,
        stamp,
        {
            "event.action": action,
            "user.name": "Ayse.Yilmaz",
            "source.ip": "192.168.88.20",
            "source.mac": MAC2,
            "message": f"Ayse.Yilmaz {action}",
        },
    )


MAC2, MAC3 = "aa:bb:cc:dd:ee:02", "aa:bb:cc:dd:ee:03"
SESSION_EVENTS = [
    nat(1000, at(10), "192.168.88.10", 51514, 40000, "translation-built"),
    dhcp(1100, at(10), "dhcp-assign", MAC2),
    hotspot(1200, at(10), "login"),
    nat(1300, at(10, 5), "192.168.88.10", 51514, 40000, "translation-teardown"),
    nat(1400, at(10, 10), "192.168.88.11", 50000, 40001),  # observed: open for 300 s
    nat(1500, at(10, 20), "192.168.88.12", 40000, 40002, more={"event.duration": 120 * 10**9}),
    nat(1600, at(10, 30), "192.168.88.13", 41000, 40003, "translation-built"),
    nat(1700, at(10, 31), "192.168.88.13", 41000, 40003, "translation-built"),
    nat(1800, at(10, 32), "192.168.88.13", 41000, 40003, "translation-teardown"),
    hotspot(1900, at(11), "logout"),
    dhcp(2000, at(12), "dhcp-assign", MAC2),  # renewal: same MAC
    dhcp(2100, at(14), "dhcp-assign", MAC3),  # the address moved to another MAC
    dhcp(2200, at(16), "dhcp-release", MAC3),
]


def _apply_session_events(index: IndexBackend, replay: str) -> None:
    ops = [
        session_ops(e, e["log.file.path"], e["log.offset"], DAY, Timeouts()) for e in SESSION_EVENTS
    ]
    if replay == "all":  # one batch, applied twice
        index.write(Batch(sessions=[op for one in ops for op in one]))
    for one in ops:
        index.write(Batch(sessions=one))
        if replay == "each":  # every batch replayed right after it (a crash before commit)
            index.write(Batch(sessions=one))


def _ref(offset: int) -> tuple[str, int]:
    return path(GW), offset


@pytest.mark.parametrize("replay", ["once", "each", "all"])
def test_sessions_semantics_and_idempotent_replay(index: IndexBackend, replay: str) -> None:
    """open/close/span/renew build the expected intervals, whether ops are replayed or not."""
    _apply_session_events(index, replay)
    ip = "203.0.113.5"

    def nat_at(moment: dt.datetime, port: int | None = None) -> list[Session]:
        return index.sessions("nat", moment, moment, outer_ip=ip, outer_port=port)

    (built,) = nat_at(at(10, 2), 40000)
    assert (built.start, built.end, built.expires) == (at(10), at(10, 5), at(13))
    assert (built.inner_ip, built.inner_port, built.outer_ip, built.outer_port) == (
        "192.168.88.10",
        51514,
        ip,
        40000,
    )
    assert (built.kind, built.device, built.transport) == ("nat", GW, "tcp")
    assert (built.start_ref, built.end_ref) == (_ref(1000), _ref(1300))
    assert nat_at(at(10, 6), 40000) == []
    (seen,) = nat_at(at(10, 12), 40001)
    assert (seen.end, seen.expires, seen.end_ref) == (None, at(10, 15), None)
    assert nat_at(at(10, 16), 40001) == []
    (span,) = nat_at(at(10, 19), 40002)
    assert (span.start, span.end, span.start_ref, span.end_ref) == (
        at(10, 18),
        at(10, 20),
        _ref(1500),
        _ref(1500),
    )
    # The teardown closes the newest of the two open translations with its addresses.
    older, newer = nat_at(at(10, 31, 30), 40003)
    assert (older.start_ref, older.end, newer.start_ref, newer.end) == (
        _ref(1600),
        None,
        _ref(1700),
        at(10, 32),
    )
    assert [s.start_ref for s in nat_at(at(10, 33), 40003)] == [_ref(1600)]
    window = index.sessions("nat", at(10), at(10, 20), outer_ip=ip)
    assert [s.outer_port for s in window] == [40000, 40001, 40002]
    assert index.sessions("nat", at(10), at(10, 20), outer_ip="198.51.100.1") == []

    (lease1,) = index.sessions("dhcp", at(11), at(11), inner_ip="192.168.88.20")
    assert (lease1.mac, lease1.hostname, lease1.start, lease1.end) == (
        MAC2,
        "laptop-ayse",
        at(10),
        at(14),
    )
    assert lease1.expires == at(12) + dt.timedelta(days=1)  # pushed by the renewal
    assert (lease1.start_ref, lease1.end_ref) == (_ref(1100), _ref(2100))
    (lease2,) = index.sessions("dhcp", at(15), at(15), inner_ip="192.168.88.20")
    assert (lease2.mac, lease2.start, lease2.end) == (MAC3, at(14), at(16))
    assert (lease2.start_ref, lease2.end_ref) == (_ref(2100), _ref(2200))
    assert index.sessions("dhcp", at(17), at(17), inner_ip="192.168.88.20") == []
    assert index.sessions("dhcp", at(10), at(17), mac=MAC2) == [lease1]
    assert index.sessions("dhcp", at(10), at(17)) == [lease1, lease2]

    (login,) = index.sessions("hotspot", at(10, 30), at(10, 30), user="ayse.yilmaz")
    assert (login.user, login.inner_ip, login.mac, login.start, login.end) == (
        "Ayse.Yilmaz",
        "192.168.88.20",
        MAC2,
        at(10),
        at(11),
    )
    assert index.sessions("hotspot", at(10, 30), at(10, 30), inner_ip="192.168.88.20") == [login]
    assert index.sessions("hotspot", at(10, 30), at(10, 30), mac=MAC2) == [login]
    assert index.sessions("hotspot", at(11, 30), at(11, 30), user="Ayse.Yilmaz") == []
    assert index.sessions("hotspot", at(10, 30), at(10, 30), user="someone") == []


def test_replayed_close_does_not_close_a_later_session(index: IndexBackend) -> None:
    """Replaying a batch whose close came before an out-of-order open closes nothing new."""
    index.write(batch([nat(0, at(10), "192.168.88.10", 51514, 40000, "translation-built")]))
    replayed = batch(
        [
            nat(100, at(10, 5), "192.168.88.10", 51514, 40000, "translation-teardown"),
            # Logged after the teardown but stamped before it (a late line).
            nat(200, at(10, 3), "192.168.88.10", 51514, 40000, "translation-built"),
        ],
        sessions=True,
    )
    index.write(Batch(sessions=replayed.sessions))
    before = _sessions_snapshot(index)
    index.write(Batch(sessions=replayed.sessions))
    assert _sessions_snapshot(index) == before
    assert [(s.start, s.end) for s in before] == [(at(10), at(10, 5)), (at(10, 3), None)]


# -- dropping days ------------------------------------------------------------------------------


def test_drop_days_forgets_events_checkpoints_and_sessions(index: IndexBackend) -> None:
    """drop_days forgets those days (events, checkpoints, sessions, their ends); others stay."""
    tomorrow = DAY + dt.timedelta(days=1)
    late = at(23, 59)
    write(index, [*CORPUS, nat(700, late, "192.168.88.10", 51600, 40100, "translation-built")])
    early = [
        nat(
            0,
            at(0, 1, day=tomorrow),
            "192.168.88.10",
            51600,
            40100,
            "translation-teardown",
            day=tomorrow,
        ),
        nat(
            100,
            at(0, 2, day=tomorrow),
            "192.168.88.11",
            50000,
            40101,
            "translation-built",
            day=tomorrow,
        ),
    ]
    write(index, early, tomorrow)
    whole = (at(0), at(23, 59, 59, day=tomorrow))
    hit = index.search(request(start=at(0, 0, day=tomorrow), end=whole[1])).hits[0]
    assert hit.day == tomorrow
    assert index.days() == [DAY, tomorrow]
    ip = "203.0.113.5"
    (closed,) = index.sessions("nat", *whole, outer_ip=ip, outer_port=40100)
    assert closed.end == at(0, 1, day=tomorrow)
    assert len(index.sessions("nat", *whole, outer_ip=ip, outer_port=40101)) == 1

    index.drop_days(tomorrow, tomorrow)
    assert index.days() == [DAY]
    assert index.get(tomorrow, hit.id) is None
    assert offsets(index, start=whole[0], end=whole[1]) == ALL | {700}
    assert index.checkpoint(path(GW, tomorrow), tomorrow) == 0
    assert index.parse_stats(tomorrow) == {}
    assert index.checkpoint(path(GW), DAY) == 800
    (reopened,) = index.sessions("nat", *whole, outer_ip=ip, outer_port=40100)
    assert (reopened.start, reopened.end, reopened.end_ref) == (late, None, None)
    assert index.sessions("nat", *whole, outer_ip=ip, outer_port=40101) == []

    write(index, early, tomorrow)  # reindexing the day
    assert len(index.search(request(start=whole[0], end=whole[1], limit=100)).hits) == 10
    assert index.days() == [DAY, tomorrow]
    (closed_again,) = index.sessions("nat", *whole, outer_ip=ip, outer_port=40100)
    assert closed_again == closed
