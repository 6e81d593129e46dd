"""Which event fields are columns of the index, and the short names operators type.

Every backend stores the same columns; fields that are not columns go to ``extra`` (JSON) and
can still be searched. IP columns hold addresses in a form that sorts by address, so a CIDR is a
range: 16-byte big-endian (IPv4 as ::ffff:a.b.c.d) in SQLite, ``inet`` in PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
from typing import Any, Literal, NamedTuple

import orjson

Kind = Literal["ip", "int", "text", "time", "mac"]


class Column(NamedTuple):
    name: str  # column name in every backend
    field: str  # ECS field name
    kind: Kind


COLUMNS: tuple[Column, ...] = (
    Column("ts", "@timestamp", "time"),
    Column("created", "event.created", "time"),
    Column("device", "observer.name", "text"),
    Column("dataset", "event.dataset", "text"),
    Column("action", "event.action", "text"),
    Column("outcome", "event.outcome", "text"),
    Column("severity", "log.syslog.severity.code", "int"),
    Column("facility", "log.syslog.facility.code", "int"),
    Column("host", "host.name", "text"),
    Column("app", "log.syslog.appname", "text"),
    Column("src_ip", "source.ip", "ip"),
    Column("src_port", "source.port", "int"),
    Column("src_mac", "source.mac", "mac"),
    Column("src_nat_ip", "source.nat.ip", "ip"),
    Column("src_nat_port", "source.nat.port", "int"),
    Column("dst_ip", "destination.ip", "ip"),
    Column("dst_port", "destination.port", "int"),
    Column("dst_nat_ip", "destination.nat.ip", "ip"),
    Column("dst_nat_port", "destination.nat.port", "int"),
    Column("transport", "network.transport", "text"),
    Column("client_ip", "client.ip", "ip"),
    Column("client_mac", "client.mac", "mac"),
    Column("user_name", "user.name", "text"),
    Column("rule", "rule.name", "text"),
    Column("message", "message", "text"),
    Column("log_file", "log.file.path", "text"),
    Column("log_offset", "log.offset", "int"),
)
BY_FIELD: dict[str, Column] = {c.field: c for c in COLUMNS}

# What operators type -> the ECS fields it means (several = any of them matches).
ALIASES: dict[str, tuple[str, ...]] = {
    "src": ("source.ip",),
    "dst": ("destination.ip",),
    "mac": ("source.mac", "client.mac"),
    "user": ("user.name",),
    "device": ("observer.name",),
    "host": ("host.name",),
    "app": ("log.syslog.appname",),
    "sev": ("log.syslog.severity.code",),
    "severity": ("log.syslog.severity.code",),
    "ip": ("source.ip", "destination.ip", "client.ip", "source.nat.ip", "destination.nat.ip"),
    "dataset": ("event.dataset",),
    "action": ("event.action",),
}
PREFIXES = {"src.": "source.", "dst.": "destination.", "nat.": "source.nat."}


def resolve_field(name: str) -> tuple[str, ...]:
    """The ECS field(s) an operator's field name means."""
    if name in ALIASES:
        return ALIASES[name]
    for short, full in PREFIXES.items():
        if name.startswith(short):
            return (full + name[len(short) :],)
    return (name,)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_MICROSECOND = dt.timedelta(microseconds=1)


def micros(value: dt.datetime) -> int:
    """Microseconds since the epoch (UTC) of an aware datetime (exact, no float)."""
    return (value - EPOCH) // ONE_MICROSECOND


def from_micros(value: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=value)


_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


def ip_key(text: str) -> bytes:
    """16 bytes that sort like the address (IPv4 mapped into IPv6); ValueError if not an IP.

    inet_pton (C) instead of ipaddress (about 5 µs a call): this runs for every address of
    every indexed line, and a site has more addresses than any cache holds. Both accept the
    normalised text parsers produce; a zone suffix (fe80::1%eth0) goes through ipaddress.
    """
    try:
        return _V4_MAPPED + socket.inet_pton(socket.AF_INET, text)
    except OSError:
        pass
    try:
        return socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        pass
    addr = ipaddress.ip_address(text)  # raises ValueError: not an address
    if addr.version == 4:
        return _V4_MAPPED + addr.packed
    return addr.packed


def ip_text(key: bytes) -> str:
    addr = ipaddress.IPv6Address(key)
    mapped = addr.ipv4_mapped
    return str(mapped) if mapped is not None else str(addr)


def cidr_range(text: str) -> tuple[bytes, bytes]:
    """First and last 16-byte keys of a network (``10.0.0.0/8``) or of a single address."""
    net = ipaddress.ip_network(text, strict=False)
    first, last = net.network_address, net.broadcast_address
    return ip_key(str(first)), ip_key(str(last))


# Where each column field goes in a row (COLUMNS order) and whether it is a time.
_SLOTS: dict[str, tuple[int, bool]] = {
    c.field: (i, c.kind == "time") for i, c in enumerate(COLUMNS)
}
_WIDTH = len(COLUMNS)


def split_event(event: dict[str, Any]) -> tuple[list[Any], str | None]:
    """(column values in ``COLUMNS`` order, JSON of the remaining fields or None).

    Times become microseconds. A list rather than a dict: both backends bind values by
    position, and the per-column lookups of a dict cost about a tenth of the SQLite write.
    """
    row: list[Any] = [None] * _WIDTH
    extra: dict[str, Any] = {}
    slots = _SLOTS
    for key, value in event.items():
        slot = slots.get(key)
        if slot is None:
            extra[key] = value
        elif slot[1]:
            row[slot[0]] = micros(value) if isinstance(value, dt.datetime) else int(value)
        else:
            row[slot[0]] = value
    if not extra:
        return row, None
    # orjson writes datetimes as RFC 3339 and is several times faster than json on this path
    # (one call per indexed line); non-JSON values fall back to str().
    try:
        return row, orjson.dumps(extra, default=str).decode()
    except orjson.JSONEncodeError:
        # Integers past 64 bits (a parser fed garbage digits) are beyond orjson.
        return row, json.dumps(extra, ensure_ascii=False, default=str)
