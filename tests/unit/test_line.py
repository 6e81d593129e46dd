"""Archive line format: escaping, markers, receive times in the device's timezone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logmaster.archive.line import (
    INCOMPLETE,
    Clock,
    escape,
    format_line,
    parse_line,
    truncated_marker,
    unescape,
)

PROPERTY = settings(max_examples=500, deadline=None)
ISTANBUL = ZoneInfo("Europe/Istanbul")
BERLIN = ZoneInfo("Europe/Berlin")


def epoch(text: str) -> int:
    """Seconds since the epoch of an ISO 8601 UTC time."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


# -- escaping -------------------------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=300))
def test_property_escape_unescape_round_trip(raw: bytes) -> None:
    """unescape(escape(b)) == b for any bytes; the escaped form is one line of valid UTF-8."""
    text = escape(raw)
    assert unescape(text) == raw
    assert b"\n" not in text
    assert b"\r" not in text
    assert b"\x00" not in text
    text.decode("utf-8")


@PROPERTY
@given(st.text(max_size=100).filter(lambda s: not any(c in s for c in "\\\r\n\x00")))
def test_property_clean_utf8_is_stored_verbatim(text: str) -> None:
    """Valid UTF-8 without backslash, CR, LF or NUL is not changed by escaping."""
    raw = text.encode()
    assert escape(raw) == raw


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (b"plain", b"plain"),
        (b"a\\b", b"a\\\\b"),
        (b"cr\rlf\n", b"cr\\rlf\\n"),
        (b"nul\x00", b"nul\\x00"),
        (b"bad \xff\xfe utf8", b"bad \\xff\\xfe utf8"),
        ("çğış".encode(), "çğış".encode()),
        (b"literal \\x41 and \\n", b"literal \\\\x41 and \\\\n"),
        (b"\xc3", b"\\xc3"),  # a UTF-8 sequence cut short
    ],
)
def test_escape_table(raw: bytes, escaped: bytes) -> None:
    """Each escape of the documented table, and text that only looks like an escape."""
    assert escape(raw) == escaped
    assert unescape(escaped) == raw


# -- lines ----------------------------------------------------------------------------------

markers = st.sampled_from(
    [b"", INCOMPLETE, truncated_marker(5), truncated_marker(70000) + INCOMPLETE]
)
senders = st.sampled_from([b"10.0.0.1", b"192.168.100.254", b"::1", b"2001:db8::17"])


@PROPERTY
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        st.sampled_from(
            [b"ends \\[truncated 5]", b"x\\", b"\\[incomplete]", b"a\\\\[truncated 1]"]
        ),
    ),
    marker=markers,
    sender=senders,
    second=st.integers(min_value=epoch("2000-01-01T00:00:00"), max_value=epoch("2100-01-01T00:00")),
    micros=st.integers(min_value=0, max_value=999_999),
    zone=st.sampled_from([ISTANBUL, BERLIN, ZoneInfo("UTC"), ZoneInfo("America/St_Johns")]),
)
def test_property_parse_line_inverts_format_line(
    raw: bytes, marker: bytes, sender: bytes, second: int, micros: int, zone: ZoneInfo
) -> None:
    """parse_line(format_line(...)) gives back time, sender, raw bytes and marker exactly."""
    line = format_line(Clock(zone).stamp(second), micros, sender, raw, marker)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    parsed = parse_line(line)
    assert parsed.raw == raw
    assert parsed.marker == marker
    assert parsed.sender == sender.decode()
    expected = dt.datetime.fromtimestamp(second, dt.UTC) + dt.timedelta(microseconds=micros)
    assert parsed.received == expected
    assert parsed.received.utcoffset() == zone.utcoffset(parsed.received.replace(tzinfo=None))
    # Without its LF too.
    assert parse_line(line[:-1]) == parsed


def test_literal_marker_text_in_a_message_is_not_a_marker() -> None:
    """A message ending with the text '\\[truncated 5]' keeps it; no marker is invented."""
    raw = b"<13>app: the collector writes \\[truncated 5]"
    line = format_line(Clock(ISTANBUL).stamp(epoch("2026-11-28T07:00:00")), 0, b"10.0.0.1", raw)
    parsed = parse_line(line)
    assert parsed.raw == raw
    assert parsed.marker == b""


def test_literal_marker_text_followed_by_a_real_marker() -> None:
    """Literal marker text, then a real marker: each is told apart."""
    raw = b"x \\[incomplete]"
    stamp = Clock(ISTANBUL).stamp(epoch("2026-11-28T07:00:00"))
    parsed = parse_line(format_line(stamp, 1, b"10.0.0.1", raw, truncated_marker(9)))
    assert (parsed.raw, parsed.marker) == (raw, truncated_marker(9))


def test_combined_truncated_and_incomplete_marker_round_trips() -> None:
    """finish() can mark a frame both truncated and incomplete; both parse as the marker."""
    marker = truncated_marker(500) + INCOMPLETE
    stamp = Clock(ISTANBUL).stamp(epoch("2026-11-28T07:00:00"))
    parsed = parse_line(format_line(stamp, 1, b"10.0.0.1", b"head", marker))
    assert (parsed.raw, parsed.marker) == (b"head", marker)


def test_line_layout() -> None:
    """'<RFC 3339 time with micros and offset> <ip> <escaped message><marker>\\n'."""
    stamp = Clock(ISTANBUL).stamp(epoch("2026-11-28T07:00:00"))
    line = format_line(stamp, 123, b"10.1.2.3", b"<13>hi\nthere", INCOMPLETE)
    assert line == b"2026-11-28T10:00:00.000123+03:00 10.1.2.3 <13>hi\\nthere\\[incomplete]\n"


# -- time zones -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "utc", "local", "offset"),
    [
        (ISTANBUL, "2026-11-28T07:00:00", "2026-11-28T10:00:00", b"+03:00"),
        (ISTANBUL, "2026-07-01T12:00:00", "2026-07-01T15:00:00", b"+03:00"),
        # Spring forward in Berlin: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        (BERLIN, "2026-03-29T00:59:59", "2026-03-29T01:59:59", b"+01:00"),
        (BERLIN, "2026-03-29T01:00:00", "2026-03-29T03:00:00", b"+02:00"),
        # Fall back: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:xx happens twice.
        (BERLIN, "2026-10-25T00:59:59", "2026-10-25T02:59:59", b"+02:00"),
        (BERLIN, "2026-10-25T01:00:00", "2026-10-25T02:00:00", b"+01:00"),
        (BERLIN, "2026-10-25T00:30:00", "2026-10-25T02:30:00", b"+02:00"),
        (BERLIN, "2026-10-25T01:30:00", "2026-10-25T02:30:00", b"+01:00"),
        (ZoneInfo("America/St_Johns"), "2026-01-15T12:00:00", "2026-01-15T08:30:00", b"-03:30"),
        (ZoneInfo("Asia/Kolkata"), "2026-01-15T12:00:00", "2026-01-15T17:30:00", b"+05:30"),
        (ZoneInfo("UTC"), "2026-01-15T12:00:00", "2026-01-15T12:00:00", b"+00:00"),
    ],
)
def test_stamp_renders_local_time_and_offset(
    zone: ZoneInfo, utc: str, local: str, offset: bytes
) -> None:
    """The receive time is the device's local wall clock with the offset in effect then."""
    second = epoch(utc)
    stamp = Clock(zone).stamp(second)
    assert stamp.prefix == local.encode()
    assert stamp.offset == offset
    line = format_line(stamp, 0, b"10.0.0.1", b"m")
    assert parse_line(line).received.timestamp() == second


def test_fall_back_hour_keeps_lines_ordered_by_real_time() -> None:
    """The repeated local hour differs in offset, so the two 02:30 lines are distinct instants."""
    clock = Clock(BERLIN)
    first = parse_line(format_line(clock.stamp(epoch("2026-10-25T00:30:00")), 0, b"h", b"a"))
    second = parse_line(format_line(clock.stamp(epoch("2026-10-25T01:30:00")), 0, b"h", b"b"))
    assert first.received.replace(tzinfo=None) == second.received.replace(tzinfo=None)
    assert second.received - first.received == dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("zone", "before_utc", "day_before", "day_after"),
    [
        # Istanbul midnight is 21:00 UTC the day before.
        (ISTANBUL, "2026-11-27T20:59:59", dt.date(2026, 11, 27), dt.date(2026, 11, 28)),
        (ISTANBUL, "2026-12-31T20:59:59", dt.date(2026, 12, 31), dt.date(2027, 1, 1)),
        # Berlin midnight before the spring-forward day is 23:00 UTC (CET).
        (BERLIN, "2026-03-28T22:59:59", dt.date(2026, 3, 28), dt.date(2026, 3, 29)),
        # Midnight after the spring-forward day is 22:00 UTC (CEST).
        (BERLIN, "2026-03-29T21:59:59", dt.date(2026, 3, 29), dt.date(2026, 3, 30)),
        # Midnight after the fall-back day is 23:00 UTC (CET again).
        (BERLIN, "2026-10-25T22:59:59", dt.date(2026, 10, 25), dt.date(2026, 10, 26)),
    ],
)
def test_stamp_day_is_the_devices_local_day(
    zone: ZoneInfo, before_utc: str, day_before: dt.date, day_after: dt.date
) -> None:
    """23:59:59 local is still that day; one second later, 00:00:00 local, is the next."""
    clock = Clock(zone)
    second = epoch(before_utc)
    before = clock.stamp(second)
    after = clock.stamp(second + 1)
    assert before.prefix.endswith(b"T23:59:59")
    assert after.prefix.endswith(b"T00:00:00")
    assert (before.day, after.day) == (day_before, day_after)
    assert before.prefix.startswith(day_before.isoformat().encode())
    assert after.prefix.startswith(day_after.isoformat().encode())


def test_clock_caches_within_a_second_and_recomputes_on_change() -> None:
    """Same second: the same Stamp object; a different second: a new one (also going back)."""
    clock = Clock(ISTANBUL)
    t = epoch("2026-11-28T07:00:00")
    a = clock.stamp(t)
    assert clock.stamp(t) is a
    b = clock.stamp(t + 1)
    assert b.second == t + 1
    assert b.prefix == b"2026-11-28T10:00:01"
    assert clock.stamp(t) == a
