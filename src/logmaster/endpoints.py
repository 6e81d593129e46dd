"""``HOST:PORT`` listener and target specifications, IPv6 written as ``[ADDR]:PORT``."""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple


class Endpoint(NamedTuple):
    host: str
    port: int

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(spec: str) -> Endpoint:
    """Parse ``HOST:PORT`` or ``[V6ADDR]:PORT``; raise ValueError with the offending text."""
    text = spec.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{spec!r}: write IPv6 listeners as [ADDRESS]:PORT")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"{spec!r}: {host!r} is not an IPv6 address") from exc
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{spec!r}: expected HOST:PORT")
        if ":" in host:
            raise ValueError(f"{spec!r}: write IPv6 listeners as [ADDRESS]:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{spec!r}: port must be a number from 0 to 65535")
    return Endpoint(host, int(port_text))
