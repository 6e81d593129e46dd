"""Parsers: a raw syslog message -> one normalized event (flat ECS field names).

:func:`parse` reads the syslog header (RFC 5424, else RFC 3164 and its hybrids, else a bare
message), then asks the registered format parsers in order; the first that recognises the
message adds its fields. A message no parser understands keeps the header fields and ``message``
and is reported as a parse failure (the caller counts it per device).

The registry is the tuple below: one line per parser, most specific first, the generic
key=value parser last. ``tests/parsers/test_registry.py`` fails when a module in this package is
not registered here or has no samples.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from logmaster.parsers import (
    cef,
    cisco_asa,
    dhcpd,
    fortigate,
    keyvalue,
    mikrotik,
    netfilter,
    pfsense,
    rfc3164,
    rfc5424,
)
from logmaster.parsers.base import Fields, Parser, Syslog

log = logging.getLogger(__name__)

REGISTRY: tuple[Parser, ...] = (
    cef.CefParser(),
    cisco_asa.CiscoAsaParser(),
    fortigate.FortiGateParser(),
    pfsense.PfSenseParser(),
    mikrotik.MikroTikParser(),
    netfilter.NetfilterParser(),
    dhcpd.DhcpdParser(),
    keyvalue.KeyValueParser(),
)
BY_NAME: dict[str, Parser] = {p.name: p for p in REGISTRY}

# Modules of this package that read headers or hold shared code, not formats.
NOT_FORMATS = {"base", "rfc3164", "rfc5424"}


def read_syslog(
    text: str, zone: ZoneInfo, received: dt.datetime, year: int | None = None
) -> Syslog:
    """The header of ``text``: RFC 5424, else RFC 3164 (and hybrids), else bare."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.startswith("<") and (header := rfc5424.parse(text)) is not None:
        return header
    return rfc3164.parse(text, zone, received, year)


def parse(
    raw: bytes | str,
    *,
    zone: ZoneInfo,
    received: dt.datetime,
    year: int | None = None,
    pinned: str | None = None,
) -> tuple[Fields, bool]:
    """Parse one raw message; return (event fields, whether a format parser understood it)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    syslog = read_syslog(text, zone, received, year)
    fields: Fields | None = None
    for parser in (BY_NAME[pinned],) if pinned in BY_NAME else REGISTRY:
        try:
            fields = parser.parse(syslog)
        except Exception as exc:  # a parser bug must not stop indexing; tests forbid it
            log.error(
                "Parser raised; the line is kept unparsed.",
                extra={"parser": parser.name, "error": repr(exc)},
            )
            fields = None
        if fields:
            break
    event: Fields = {
        "@timestamp": syslog.timestamp or received,
        "event.created": received,
        "message": syslog.message,
    }
    # Unrolled (no per-line tuple of pairs); the key order is the same as before.
    pri = syslog.pri
    if pri is not None:
        event["log.syslog.priority"] = pri
        event["log.syslog.facility.code"] = pri >> 3
        event["log.syslog.severity.code"] = pri & 7
    if syslog.hostname:
        event["host.name"] = syslog.hostname
    if syslog.appname:
        event["log.syslog.appname"] = syslog.appname
    if syslog.procid:
        event["log.syslog.procid"] = syslog.procid
    if syslog.msgid:
        event["log.syslog.msgid"] = syslog.msgid
    if syslog.structured_data:
        event["log.syslog.structured_data"] = syslog.structured_data
    if fields:
        # The message stays the device's text (full-text search reads it); a parser's own
        # one-line summary (CEF's Name, ...) goes to event.reason.
        summary = fields.pop("message", None)
        if summary and "event.reason" not in fields:
            fields["event.reason"] = summary
        event.update(fields)
    return event, bool(fields)


__all__ = ["BY_NAME", "REGISTRY", "Fields", "Parser", "Syslog", "parse", "read_syslog"]
