"""PROXY protocol v1 and v2 headers (HAProxy's spec, sent by nginx ``proxy_protocol on``).

A load balancer in front of several collectors opens the TCP connection itself, so the socket
peer is the balancer. With the PROXY protocol it first sends one header naming the real sender;
the collector files the connection's lines under that address. Only peers listed in
``[collector] proxy_protocol`` may do so (:mod:`logmaster.collector.tcp` enforces it).

:func:`parse` is incremental and knows nothing about sockets. Given the bytes received so far it
returns :data:`NEED_MORE`, :data:`ABSENT` (the stream does not start with a PROXY header) or a
:class:`Header` with the bytes it used; a malformed header raises :class:`ProxyError`.

- v1: ``PROXY TCP4|TCP6 SRC DST SPORT DPORT\\r\\n`` (at most 107 bytes) or ``PROXY UNKNOWN...``;
- v2: the 12-byte signature, version/command, family, 16-bit length, addresses, TLVs (skipped).
  ``LOCAL`` (the balancer's own health check) and families other than TCP over IPv4/IPv6 keep
  the socket peer (``Header.source`` is ``None``).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

V1_PREFIX: Final = b"PROXY "
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX: Final = 107  # the spec's longest v1 line, CRLF included
V2_MAX: Final = 16 + 2048  # addresses (at most 216 bytes) plus generous room for TLVs


class ProxyError(ValueError):
    """A PROXY header that does not follow the spec."""


@dataclass(frozen=True, slots=True)
class Header:
    source: str | None  # the sender's address; None: keep the socket peer (LOCAL / UNKNOWN)
    port: int | None
    length: int  # bytes of the stream the header took


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_MORE: Final = _Marker("NEED_MORE")
ABSENT: Final = _Marker("ABSENT")


def parse(buf: bytes) -> Header | _Marker:
    """The PROXY header at the start of ``buf``, or NEED_MORE, or ABSENT."""
    if not buf:
        return NEED_MORE
    if V2_SIGNATURE.startswith(buf[:12]):
        return NEED_MORE if len(buf) < 16 else _v2(buf)
    if V1_PREFIX.startswith(buf[:6]):
        return NEED_MORE if len(buf) < 6 else _v1(buf)
    return ABSENT


def _address(text: str, version: int) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as exc:
        raise ProxyError(f"bad address {text!r}") from exc
    if addr.version != version:
        raise ProxyError(f"{text!r} is not an IPv{version} address")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _port(text: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0") or int(text) > 65535:
        raise ProxyError(f"bad port {text!r}")
    return int(text)


def _v1(buf: bytes) -> Header | _Marker:
    end = buf.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(buf) >= V1_MAX:
            raise ProxyError("PROXY v1 line longer than 107 bytes")
        return NEED_MORE
    try:
        line = buf[:end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProxyError("PROXY v1 line is not ASCII") from exc
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return Header(None, None, end + 2)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyError(f"bad PROXY v1 line {line[:60]!r}")
    version = 4 if parts[1] == "TCP4" else 6
    source = _address(parts[2], version)
    _address(parts[3], version)
    port = _port(parts[4])
    _port(parts[5])
    return Header(source, port, end + 2)


def _v2(buf: bytes) -> Header | _Marker:
    if buf[:12] != V2_SIGNATURE:
        raise ProxyError("bad PROXY v2 signature")
    ver_cmd, family, length = struct.unpack("!BBH", buf[12:16])
    if ver_cmd >> 4 != 2:
        raise ProxyError(f"PROXY v2 header with version {ver_cmd >> 4}")
    command = ver_cmd & 0x0F
    if command not in (0, 1):
        raise ProxyError(f"PROXY v2 header with command {command}")
    total = 16 + length
    if total > V2_MAX:
        raise ProxyError(f"PROXY v2 header of {total} bytes")
    if len(buf) < total:
        return NEED_MORE
    if command == 0:  # LOCAL: the balancer speaking for itself
        return Header(None, None, total)
    body = buf[16:total]
    if family == 0x11:  # TCP over IPv4
        if length < 12:
            raise ProxyError("PROXY v2 IPv4 addresses cut short")
        src = ipaddress.IPv4Address(body[:4])
        (port,) = struct.unpack("!H", body[8:10])
        return Header(str(src), port, total)
    if family == 0x21:  # TCP over IPv6
        if length < 36:
            raise ProxyError("PROXY v2 IPv6 addresses cut short")
        src6 = ipaddress.IPv6Address(body[:16])
        (port,) = struct.unpack("!H", body[32:34])
        mapped = src6.ipv4_mapped
        return Header(str(mapped) if mapped else str(src6), port, total)
    # UNSPEC, UDP, UNIX: nothing usable about the sender; the socket peer stands.
    return Header(None, None, total)
