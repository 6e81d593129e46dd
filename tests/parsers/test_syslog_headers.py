"""Syslog headers: RFC 5424, RFC 3164 and the hybrids devices send, and bare messages."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from logmaster.parsers import read_syslog
from logmaster.parsers.rfc3164 import infer_year
from logmaster.parsers.rfc5424 import structured_data

IST = ZoneInfo("Europe/Istanbul")
JAN2 = dt.datetime(2027, 1, 2, 10, 0, tzinfo=IST)


def read(text: str, received: dt.datetime = JAN2, year: int | None = None):
    return read_syslog(text, IST, received, year)


def test_rfc5424_full_header_and_nilvalues() -> None:
    """Every RFC 5424 header field is read; NILVALUE becomes None."""
    s = read("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed")
    assert s.format == "rfc5424"
    assert s.pri == 34
    assert s.timestamp == dt.datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=dt.UTC)
    assert (s.hostname, s.appname, s.procid, s.msgid) == (
        "mymachine.example.com",
        "su",
        None,
        "ID47",
    )
    assert s.structured_data is None
    assert s.message == "'su root' failed"


def test_rfc5424_structured_data_with_escapes_and_bom() -> None:
    """SD-PARAM escapes (\\" \\\\ \\]) are decoded; a UTF-8 BOM before MSG is dropped."""
    s = read(
        '<165>1 2026-11-28T10:00:00.5+03:00 h app 12 - [a@1 x="q\\"uote" y="b\\\\s" '
        'z="br\\]k"][b@2 k="v"] \ufeffmerhaba dünya'
    )
    assert s.structured_data == {
        "a@1": {"x": 'q"uote', "y": "b\\s", "z": "br]k"},
        "b@2": {"k": "v"},
    }
    assert s.message == "merhaba dünya"
    assert s.procid == "12"
    assert s.timestamp == dt.datetime(2026, 11, 28, 7, 0, 0, 500000, tzinfo=dt.UTC)


def test_rfc5424_without_message() -> None:
    """A 5424 frame may end right after the structured data."""
    s = read("<14>1 2026-11-28T10:00:00Z host app - - -")
    assert s.format == "rfc5424" and s.message == ""


def test_malformed_structured_data_falls_back() -> None:
    """Unclosed SD is not RFC 5424; the text is still read, never dropped."""
    assert structured_data('[a@1 x="1"') is None
    s = read('<14>1 2026-11-28T10:00:00Z host app - - [a@1 x="1" rest')
    assert "rest" in s.message


def test_rfc3164_with_host_and_tag() -> None:
    """BSD header: time in the device zone, hostname, TAG[PID]."""
    s = read("<190>Jul  4 09:39:41 dhcp1 dhcpd[64305]: DHCPACK on 10.0.0.5")
    assert s.format == "rfc3164"
    assert s.timestamp == dt.datetime(2026, 7, 4, 9, 39, 41, tzinfo=IST)
    assert (s.hostname, s.appname, s.procid) == ("dhcp1", "dhcpd", "64305")
    assert s.message == "DHCPACK on 10.0.0.5"


def test_rfc3164_without_hostname() -> None:
    """ "<34>Oct 11 22:14:15 su: ..." has a tag right after the time."""
    s = read("<34>Oct 11 22:14:15 su: 'su root' failed")
    assert s.hostname is None and s.appname == "su"


def test_december_line_read_in_january_is_last_year() -> None:
    """Year inference: Dec 31 read on Jan 2 is the previous year; a clock ahead is tolerated."""
    assert read("<13>Dec 31 23:59:59 h a: x").timestamp.year == 2026  # type: ignore[union-attr]
    assert infer_year(1, 1, dt.datetime(2026, 12, 31, 23, 59, tzinfo=IST)) == 2027
    assert infer_year(2, 29, dt.datetime(2027, 3, 1, tzinfo=IST)) == 2024
    assert read("<13>Dec 31 23:59:59 h a: x", year=2019).timestamp.year == 2019  # type: ignore[union-attr]


def test_iso_timestamp_inside_3164() -> None:
    """rsyslog-style ISO time in a BSD frame."""
    s = read("<13>2026-11-28T10:00:00.25+03:00 host tag: iso")
    assert s.timestamp == dt.datetime(2026, 11, 28, 10, 0, 0, 250000, tzinfo=IST)
    assert (s.hostname, s.appname, s.message) == ("host", "tag", "iso")


def test_cisco_sequence_number_and_clock_marks() -> None:
    """'<189>45: *Mar  1 18:46:11.123: %SYS-5-...' keeps the % message whole."""
    s = read("<189>45: *Mar  1 18:46:11.123: %SYS-5-CONFIG_I: Configured from console")
    assert s.timestamp == dt.datetime(2026, 3, 1, 18, 46, 11, 123000, tzinfo=IST)
    assert s.message.startswith("%SYS-5-CONFIG_I:")


def test_year_in_timestamp_and_utc_suffix() -> None:
    """'Apr 29 2013 12:59:50:' (ASA) and a UTC suffix are honoured."""
    s = read("Apr 29 2013 12:59:50: %ASA-6-305011: Built dynamic TCP translation")
    assert s.timestamp == dt.datetime(2013, 4, 29, 12, 59, 50, tzinfo=IST)
    u = read("<166>Mar 01 2026 10:00:00 UTC: %ASA-6-1: x")
    assert u.timestamp == dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def test_3164_wrapping_a_5424_message() -> None:
    """A relay's BSD header around a whole RFC 5424 frame: the inner header wins."""
    s = read("<134>Nov 28 10:00:00 relay <165>1 2026-11-28T07:00:00Z - app - - - inner")
    assert s.format == "rfc5424" and s.appname == "app" and s.message == "inner"
    assert s.hostname == "relay"
    assert s.timestamp == dt.datetime(2026, 11, 28, 7, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "text",
    [
        "firewall,info forward: in:ether5 out:ether1",
        "date=2018-12-27 time=11:07:55 logid=1",
        "CEF:0|a|b|1|2|n|3|src=1.2.3.4",
        "just words",
    ],
)
def test_bare_messages_stay_whole(text: str) -> None:
    """No header at all: the message is the whole text, no time, no host."""
    s = read(text)
    assert s.format == "bare" and s.message == text and s.timestamp is None


def test_time_of_day_only_uses_the_receive_date() -> None:
    """MikroTik's '11:42:32 dhcp,info ...' gets the receive date in the device zone."""
    s = read("11:42:32 dhcp,info defconf assigned 192.168.88.37")
    assert s.timestamp == dt.datetime(2027, 1, 2, 11, 42, 32, tzinfo=IST)
    assert s.message.startswith("dhcp,info")


def test_key_value_token_is_not_a_tag() -> None:
    """'host src="1.2.3.4" ...' keeps its first pair in the message."""
    s = read('<13>Nov 28 10:00:00 fw1 src="1.2.3.4:5" dst="5.6.7.8:80" msg="x"')
    assert s.hostname == "fw1" and s.appname is None
    assert s.message.startswith('src="1.2.3.4:5"')
