"""One archive line: ``<receive time> <sender ip> <escaped raw message>`` + LF.

The receive time is RFC 3339 with microseconds and the device's UTC offset
(``2026-11-28T10:00:00.123456+03:00``), so the date on a line is the date of the file it sits in.

Escapes keep one message on one line and keep the raw bytes recoverable exactly:

==========  =================================================================
``\\\\``    a backslash
``\\r``     CR
``\\n``     LF
``\\xNN``   a byte that is not part of valid UTF-8 (and NUL)
==========  =================================================================

A marker after the message, introduced by a backslash that no escape uses, records what the
collector did to it; the unescaped message never contains it:

- ``\\[truncated N]``: the message was N bytes and only the first max_message_bytes are kept;
- ``\\[incomplete]``: the connection closed or stalled before the frame was complete.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple
from zoneinfo import ZoneInfo


def truncated_marker(original_length: int) -> bytes:
    return b"\\[truncated %d]" % original_length


INCOMPLETE = b"\\[incomplete]"

_NEEDS_ESCAPE = re.compile(rb"[\\\r\n\x00]")
_ESCAPES = {b"\\": b"\\\\", b"\r": b"\\r", b"\n": b"\\n", b"\x00": b"\\x00"}


def escape(raw: bytes) -> bytes:
    """Escape ``raw`` for one archive line; the common clean ASCII/UTF-8 case costs two scans."""
    if _NEEDS_ESCAPE.search(raw) is not None:
        raw = _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], raw)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return _escape_invalid_utf8(raw)
    return raw


def _escape_invalid_utf8(raw: bytes) -> bytes:
    out = bytearray()
    view = raw
    while view:
        try:
            view.decode("utf-8")
        except UnicodeDecodeError as exc:
            out += view[: exc.start]
            for byte in view[exc.start : exc.end]:
                out += b"\\x%02x" % byte
            view = view[exc.end :]
        else:
            out += view
            break
    return bytes(out)


_UNESCAPE = re.compile(rb"\\(\\|r|n|x[0-9a-f]{2})")
_UNESCAPED = {b"\\": b"\\", b"r": b"\r", b"n": b"\n"}


def _unescape_one(m: re.Match[bytes]) -> bytes:
    code = m.group(1)
    return _UNESCAPED.get(code) or bytes((int(code[1:], 16),))


def unescape(text: bytes) -> bytes:
    """Inverse of :func:`escape`."""
    if b"\\" not in text:
        return text  # the common case: nothing was escaped
    if b"\\r" not in text and b"\\n" not in text and b"\\x" not in text:
        # Only escaped backslashes (CEF's "\|", Windows paths): the same left-to-right pairs as
        # the regex, without a Python call per escape.
        return text.replace(b"\\\\", b"\\")
    return _UNESCAPE.sub(_unescape_one, text)


class Stamp(NamedTuple):
    """The parts of a receive time that change at most once a second."""

    second: int
    day: dt.date
    prefix: bytes  # b"2026-11-28T10:00:00"
    offset: bytes  # b"+03:00"


class Clock:
    """Renders receive times in one timezone, recomputing only when the second changes."""

    __slots__ = ("_last", "zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._last = Stamp(-1, dt.date.min, b"", b"")

    def stamp(self, second: int) -> Stamp:
        if second != self._last.second:
            local = dt.datetime.fromtimestamp(second, self.zone)
            off = local.strftime("%z")
            self._last = Stamp(
                second,
                local.date(),
                local.strftime("%Y-%m-%dT%H:%M:%S").encode(),
                f"{off[:3]}:{off[3:]}".encode(),
            )
        return self._last


def format_line(stamp: Stamp, micros: int, ip: bytes, raw: bytes, marker: bytes = b"") -> bytes:
    """The archive line for one message, LF included."""
    return b"%s.%06d%s %s %s%s\n" % (stamp.prefix, micros, stamp.offset, ip, escape(raw), marker)


class ArchiveLine(NamedTuple):
    received: dt.datetime
    sender: str
    raw: bytes
    marker: bytes


_MARKER = re.compile(rb"(?<!\\)((?:\\\\)*)((?:\\\[(?:truncated \d+|incomplete)\])+)$")
_LAST_MARKER = re.compile(rb"\\\[(?:truncated \d+|incomplete)\]\Z")
# NamedTuple's generated __new__ is Python code; tuple.__new__ skips that call per line.
_new_line = tuple.__new__


def parse_line(line: bytes) -> ArchiveLine:
    """Split an archive line (with or without its LF) back into its parts and raw bytes."""
    # line.split(b" ", 2) of the line without its LF, but the message is copied once, not twice.
    first = line.find(b" ")
    second = line.find(b" ", first + 1) if first >= 0 else -1
    if second < 0:
        raise ValueError(f"not an archive line: {line[:80]!r}")
    rest = line[second + 1 : -1 if line.endswith(b"\n") else None]
    marker = b""
    # A marker ends the line, and the last one starts at the last "\[": only then is the
    # (line-long) backwards regex search worth it (measured: 40 µs per line ending in "]").
    if rest.endswith(b"]") and _LAST_MARKER.match(rest, rest.rfind(b"\\[")) is not None:
        m = _MARKER.search(rest)
        if m is not None:
            marker = m.group(2)
            rest = rest[: m.start(2)]
    return _new_line(
        ArchiveLine,
        (
            dt.datetime.fromisoformat(line[:first].decode()),
            line[first + 1 : second].decode(),
            unescape(rest),
            marker,
        ),
    )
