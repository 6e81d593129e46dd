"""Reading the few syslog header fields the collector needs, cheaply.

Only PRI, the timestamp text and the hostname, and only for messages whose device must be told
apart by hostname (a relay forwarding for several hosts). The full parse of RFC 3164 / 5424 is
the parsers' job, later, from the archive.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_PRI = re.compile(rb"<(\d{1,3})>")
# RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME
_RFC5424 = re.compile(rb"<\d{1,3}>\d{1,2} (\S+) (\S+)")
# RFC 3164: "Mmm dd hh:mm:ss HOST" (day space-padded), optionally with a year or an ISO stamp.
_RFC3164 = re.compile(
    rb"<\d{1,3}>(?:\d+: )?"
    rb"([A-Z][a-z]{2} [ 0-9]\d(?: \d{4})? \d\d:\d\d:\d\d(?:\.\d+)?|\d{4}-\d\d-\d\dT\S+)"
    rb":? (\S+)"
)


class Header(NamedTuple):
    pri: int | None
    timestamp: str | None
    hostname: str | None


def read_header(raw: bytes) -> Header:
    """PRI, timestamp text and hostname of a syslog message; None for what is not there."""
    m = _PRI.match(raw)
    if m is None:
        return Header(None, None, None)
    pri = int(m.group(1))
    m5 = _RFC5424.match(raw)
    if m5 is not None:
        stamp, host = m5.group(1), m5.group(2)
        return Header(pri, _text(stamp), _text(host))
    m3 = _RFC3164.match(raw)
    if m3 is not None:
        host = m3.group(2)
        # "Oct 11 22:14:15 su: ..." has no hostname: the tag ends with a colon.
        hostname = None if host.endswith(b":") or b"[" in host else _text(host)
        return Header(pri, _text(m3.group(1)), hostname)
    return Header(pri, None, None)


def _text(value: bytes) -> str | None:
    return None if value == b"-" else value.decode("utf-8", "replace")
