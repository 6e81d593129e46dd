"""RFC 5424 headers: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]``.

NILVALUE (``-``) becomes None; structured data is decoded with its escapes (``\\"``, ``\\\\``,
``\\]``); a UTF-8 BOM at the start of MSG is removed (RFC 5424 6.4).
"""

from __future__ import annotations

import datetime as dt
import re

from logmaster.parsers.base import Syslog

_HEAD = re.compile(r"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ?")
_SD_PARAM = re.compile(r'\s*([^\s=\]"]+)="((?:[^"\\]|\\.)*)"')
_SD_ESCAPE = re.compile(r'\\(["\\\]])')


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def timestamp(text: str) -> dt.datetime | None:
    """An RFC 3339 time (``Z`` or an offset; fractions up to 6 digits), or None."""
    if text == "-" or len(text) < 19:
        return None
    t = text.replace("z", "Z")
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    # Python accepts at most 6 fraction digits; RFC 5424 allows exactly up to 6 as well.
    m = re.match(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(\.\d+)?(.*)$", t)
    if m is None:
        return None
    frac = (m.group(2) or "")[:7]
    try:
        value = dt.datetime.fromisoformat(m.group(1) + frac + m.group(3))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def structured_data(text: str) -> tuple[dict[str, dict[str, str]] | None, str] | None:
    """Parse SD at the start of ``text``; return (sd or None for NILVALUE, rest) or None."""
    if text.startswith("-"):
        return None, text[1:]
    if not text.startswith("["):
        return None
    sd: dict[str, dict[str, str]] = {}
    pos = 0
    while pos < len(text) and text[pos] == "[":
        end_id = pos + 1
        while end_id < len(text) and text[end_id] not in " ]":
            end_id += 1
        sd_id = text[pos + 1 : end_id]
        if not sd_id:
            return None
        params: dict[str, str] = {}
        pos = end_id
        while True:
            m = _SD_PARAM.match(text, pos)
            if m is None:
                break
            params[m.group(1)] = _SD_ESCAPE.sub(r"\1", m.group(2))
            pos = m.end()
        if pos >= len(text) or text[pos] != "]":
            return None
        sd[sd_id] = params
        pos += 1
    return sd, text[pos:]


def parse(text: str) -> Syslog | None:
    """The header of an RFC 5424 message, or None when ``text`` is not one."""
    m = _HEAD.match(text)
    if m is None:
        return None
    pri = int(m.group(1))
    if pri > 191:
        return None
    rest = text[m.end() :]
    parsed = structured_data(rest)
    if parsed is None:
        return None
    sd, msg = parsed
    if msg.startswith(" "):
        msg = msg[1:]
    if msg.startswith("\ufeff"):
        msg = msg[1:]
    return Syslog(
        message=msg,
        format="rfc5424",
        pri=pri,
        timestamp=timestamp(m.group(2)),
        hostname=_nil(m.group(3)),
        appname=_nil(m.group(4)),
        procid=_nil(m.group(5)),
        msgid=_nil(m.group(6)),
        structured_data=sd,
    )
