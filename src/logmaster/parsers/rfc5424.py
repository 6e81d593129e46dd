"""RFC 5424 headers: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]``.

NILVALUE (``-``) becomes None; structured data is decoded with its escapes (``\\"``, ``\\\\``,
``\\]``); a UTF-8 BOM at the start of MSG is removed (RFC 5424 6.4).
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from logmaster.parsers.base import Syslog

_HEAD = re.compile(r"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ?")
_SD_PARAM = re.compile(r'\s*([^\s=\]"]+)="((?:[^"\\]|\\.)*)"')
_SD_ESCAPE = re.compile(r'\\(["\\\]])')


def timestamp(text: str) -> dt.datetime | None:
    """An RFC 3339 time (``Z`` or an offset; fractions up to 6 digits), or None."""
    m = _COMMON_TIME.fullmatch(text)
    if m is None:
        return _timestamp(text)
    second, frac, offset = m.groups()
    value = _to_second(second, offset)
    if value is None or frac is None:
        return value
    # Adding under a fixed offset is plain field arithmetic, so this equals fromisoformat of the
    # whole text (same fields, an equal timezone).
    return value + dt.timedelta(microseconds=int(frac[1:].ljust(6, "0")))


# The shape nearly every sender uses; the time up to the second is cached (many lines share it)
# and the fraction added. Other shapes (and hour 24, which some Pythons accept) take the
# general path.
_COMMON_TIME = re.compile(
    r"(\d{4}-\d\d-\d\d[Tt ](?:[01]\d|2[0-3]):\d\d:\d\d)(\.\d{1,6})?([Zz]|[+-]\d\d:\d\d)"
)


@functools.lru_cache(maxsize=4096)
def _to_second(second: str, offset: str) -> dt.datetime | None:
    return _timestamp(second + offset)


def _timestamp(text: str) -> dt.datetime | None:
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
    pri_text, stamp, hostname, appname, procid, msgid = m.groups()
    pri = int(pri_text)
    if pri > 191:
        return None
    sd: dict[str, dict[str, str]] | None = None
    pos = m.end()
    if text.startswith("-", pos):
        pos += 1  # NILVALUE: no structured data, and the message is cut from text only once
        if text.startswith(" ", pos):
            pos += 1
        if text.startswith("\ufeff", pos):
            pos += 1
        msg = text[pos:]
    else:
        parsed = structured_data(text[pos:])
        if parsed is None:
            return None
        sd, msg = parsed
        if msg.startswith(" "):
            msg = msg[1:]
        if msg.startswith("\ufeff"):
            msg = msg[1:]
    return Syslog(
        msg,
        "rfc5424",
        pri,
        timestamp(stamp),
        None if hostname == "-" else hostname,
        None if appname == "-" else appname,
        None if procid == "-" else procid,
        None if msgid == "-" else msgid,
        sd,
    )
