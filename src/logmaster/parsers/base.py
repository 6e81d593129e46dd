"""The parser contract: what a parser gets, what it returns, and the helpers they share.

A parser turns one syslog *message* (the part after the header) into event fields::

    class MyVendorParser(Parser):
        name = "myvendor"                 # event.dataset is "myvendor" or "myvendor.<kind>"

        def parse(self, syslog: Syslog) -> Fields | None:
            if not syslog.message.startswith("MYV:"):
                return None               # not this format: the next parser is tried
            return {"event.dataset": "myvendor.traffic", "source.ip": "10.0.0.1", ...}

Rules every parser follows (a test checks each):

- ``parse`` never raises, whatever the input; it returns ``None`` for "not my format" and must
  decide that cheaply (a prefix or one regex), because every parser is asked in turn.
- Field names are the flat, dotted ECS names of ``ARCHITECTURE.md`` section 6 (``source.ip``,
  ``source.nat.port``, ``client.mac``, ``user.name``, ...). Values: IP addresses as normalised
  strings (:func:`ip`), ports and counters as ``int`` (:func:`port`), MACs lower-case colon form
  (:func:`mac`), times as aware ``datetime``. A field that is absent is left out, never ``None``.
- The header fields (``@timestamp``, ``host.name``, ``log.syslog.*``, ``message``) are filled in by
  :func:`logmaster.parsers.parse`; a parser only sets ``@timestamp`` when the message carries a
  better time than the header.
- One module per format, registered with one line in ``parsers/__init__.py``, with samples in
  ``tests/parsers/samples/<name>.txt`` and tests in ``tests/parsers/test_<name>.py``.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Any, ClassVar

Fields = dict[str, Any]


@dataclass(slots=True)
class Syslog:
    """What the syslog header said (each part optional) and the message after it."""

    message: str
    format: str = "bare"  # "rfc5424", "rfc3164" or "bare"
    pri: int | None = None
    timestamp: dt.datetime | None = None
    hostname: str | None = None
    appname: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] | None = None


class Parser:
    """Base class of format parsers; see the module docstring for the contract."""

    name: ClassVar[str] = ""

    def parse(self, syslog: Syslog) -> Fields | None:  # pragma: no cover - interface
        raise NotImplementedError


# -- shared helpers ---------------------------------------------------------------------------


def ip(text: str | None) -> str | None:
    """A normalised IP address string, or None when ``text`` is not an address."""
    if not text:
        return None
    return _ip(text)


# A dotted quad exactly as ipaddress accepts it (0-255, no leading zeros); then its text is
# already the normal form.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


@functools.lru_cache(maxsize=1 << 16)
def _ip(text: str) -> str | None:
    # Cached: the same few thousand addresses fill a day of logs, and ipaddress is slow
    # (5 µs; the IPv4 fast path below 0.3 µs, for sites with more addresses than the cache).
    if _IPV4.fullmatch(text):
        return text
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


def port(text: str | int | None) -> int | None:
    """A port number 0-65535, or None."""
    if text is None:
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value <= 65535 else None


def integer(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


_MAC_HEX = re.compile(r"[0-9A-Fa-f]{12}")
_MAC_SEPARATORS = re.compile(r"[:\-.]")


def mac(text: str | None) -> str | None:
    """A MAC in lower-case colon form (from colon, dash, dot or bare hex), or None."""
    if not text:
        return None
    return _mac(text)


@functools.lru_cache(maxsize=1 << 16)
def _mac(text: str) -> str | None:
    digits = _MAC_SEPARATORS.sub("", text.strip())
    if not _MAC_HEX.fullmatch(digits):
        return None
    digits = digits.lower()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def put(fields: Fields, key: str, value: Any) -> None:
    """Set ``key`` only when ``value`` is meaningful (not None, not empty)."""
    if value is not None and value != "":
        fields[key] = value


_BACKSLASH = re.compile(r"\\(.)")
_KV = re.compile(r'([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')
# For text without backslashes: the same pairs, with the value in one group: a quoted value's
# inside when its closing quote follows (the opening quote is then consumed and looked behind
# at), else the bare value. dict(findall) then needs no Python code per pair.
_KV_PLAIN = re.compile(r'([A-Za-z_][\w.\-]*)=(?:"(?=[^"]*")|)((?<=")[^"]*|\S*)"?')
# The same for ASCII text, with \w and \S spelt out (\S: not \t-\r, \x1c-\x1f, space, as
# str.isspace): a character set is a bitmap test, a category a function call per character.
_KV_PLAIN_ASCII = re.compile(
    r'([A-Za-z_][A-Za-z0-9_.\-]*)=(?:"(?=[^"]*")|)((?<=")[^"]*|[^\t-\r\x1c- ]*)"?'
)


def key_values(text: str) -> dict[str, str]:
    """``key=value`` pairs; values may be double-quoted (with backslash escapes) or bare."""
    if "\\" not in text:
        # No escapes, so no unquoting beyond dropping the quotes (a bare value starting with a
        # quote is unterminated, which unquote leaves alone): measured 2x faster.
        return dict((_KV_PLAIN_ASCII if text.isascii() else _KV_PLAIN).findall(text))
    # findall (tuples) rather than finditer (match objects): this runs for every field of
    # every FortiGate or key=value line, and is a tenth of their parse time.
    return {key: unquote(raw) if raw[:1] == '"' else raw for key, raw in _KV.findall(text)}


def unquote(raw: str) -> str:
    """A double-quoted value without its quotes and backslash escapes; other text unchanged."""
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        value = raw[1:-1]
        return _BACKSLASH.sub(r"\1", value) if "\\" in value else value
    return raw


TRANSPORTS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "47": "gre", "50": "esp"}


def transport(text: str | None) -> str | None:
    """``network.transport`` from a protocol name or number, lower case (tcp, udp, icmp...)."""
    if not text:
        return None
    t = text.strip().lower()
    return TRANSPORTS.get(t, t) if t else None


# Canonical ``event.action`` values that the session builder (later: index/sessions.py) reads.
# Parsers of every vendor use these for the same meaning; other actions are free text
# (lower-case, dash-separated, e.g. the firewall verdict "accept", "drop", "deny").
NAT_BUILT = "translation-built"  # a NAT mapping starts (ASA 305011, ...)
NAT_TEARDOWN = "translation-teardown"  # a NAT mapping ends (ASA 305012, ...)
DHCP_ASSIGN = "dhcp-assign"  # lease given/renewed: client.ip + client.mac (dhcpd DHCPACK, ...)
DHCP_RELEASE = "dhcp-release"  # lease returned or removed (DHCPRELEASE, MikroTik deassigned)
LOGIN = "login"  # hotspot / captive portal sign-in: user.name + source.ip [+ source.mac]
LOGOUT = "logout"
LOGIN_FAILED = "login-failed"
LOGIN_ATTEMPT = "login-attempt"
# Any event with source.nat.ip is evidence of a translation at @timestamp; with event.start /
# event.end or event.duration (nanoseconds, ECS) it covers that interval.
