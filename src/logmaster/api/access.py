"""Where and when a user may use the API: source networks, weekday/hour windows, client address.

Checked at sign-in and again on every request (:func:`logmaster.api.deps.current_principal`).
A window is ``{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}`` in the user's
timezone, Monday = 0; ``end`` before ``start`` spans midnight and belongs to the day it starts.
The client address is the socket peer, or the X-Forwarded-For hop nearest to us that is not a
trusted proxy when the peer is one (``[api] trusted_proxies``); without trusted proxies the
header is ignored, so a client cannot choose its own address.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator
from starlette.requests import HTTPConnection

from logmaster.api.problems import ProblemError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DAYS_TR = ("Pazartesi", "Salı", "Çarşamba", "Perşembe", "Cuma", "Cumartesi", "Pazar")


class Window(BaseModel):
    """A weekly time window in the user's timezone."""

    days: list[int] = Field(description="Weekdays, Monday = 0 ... Sunday = 6.", min_length=1)
    start: str = Field(description="Start time HH:MM (inclusive).", pattern=r"^\d\d:\d\d$")
    end: str = Field(
        description="End time HH:MM (exclusive); before start = ends the next day.",
        pattern=r"^\d\d:\d\d$",
    )

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return sorted(set(value))

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        hour, minute = int(value[:2]), int(value[3:])
        if hour > 24 or minute > 59 or (hour == 24 and minute):
            raise ValueError("use HH:MM between 00:00 and 24:00")
        return value


def parse_networks(values: list[str]) -> list[Network]:
    """CIDR strings to networks; raises ValueError naming the bad one."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an address or network (CIDR)") from exc
    return out


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.strip().split("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def client_ip(conn: HTTPConnection, trusted: list[Network]) -> str:
    """The caller's address (see the module docstring for X-Forwarded-For)."""
    peer = conn.client.host if conn.client else ""
    addr = _address(peer)
    if addr is None or not trusted or not any(addr in n for n in trusted):
        return str(addr) if addr is not None else peer
    hops = [h for part in conn.headers.getlist("x-forwarded-for") for h in part.split(",")]
    for hop in reversed(hops):
        hop_addr = _address(hop)
        if hop_addr is None:
            break  # a garbled header: trust nothing past it
        if not any(hop_addr in n for n in trusted):
            return str(hop_addr)
    return str(addr)


def _minutes(clock: str) -> int:
    return int(clock[:2]) * 60 + int(clock[3:])


def in_window(windows: list[dict[str, Any]], zone: str, now: dt.datetime) -> bool:
    if not windows:
        return True
    local = now.astimezone(ZoneInfo(zone))
    minute, day = local.hour * 60 + local.minute, local.weekday()
    for raw in windows:
        w = Window.model_validate(raw)
        start, end = _minutes(w.start), _minutes(w.end)
        if start <= end:
            if day in w.days and start <= minute < end:
                return True
        elif (day in w.days and minute >= start) or ((day - 1) % 7 in w.days and minute < end):
            return True
    return False


def check_rules(
    username: str,
    networks: list[str],
    windows: list[dict[str, Any]],
    zone: str,
    ip: str,
    now: dt.datetime | None = None,
) -> None:
    """Raise a 403 problem when ``ip`` or the time is outside the user's rules."""
    if networks:
        addr = _address(ip)
        if addr is None or not any(addr in n for n in parse_networks(networks)):
            raise ProblemError(
                403,
                "source-network",
                f"User {username} may not sign in or work from {ip}; allowed networks: "
                f"{', '.join(networks)}. Ask an administrator to add this network.",
                f"{username} kullanıcısı {ip} adresinden oturum açamaz veya çalışamaz; izinli "
                f"ağlar: {', '.join(networks)}. Bu ağın eklenmesi için yöneticinize başvurun.",
                title="Source address not allowed",
            )
    if not in_window(windows, zone, now or dt.datetime.now(dt.UTC)):
        spans = "; ".join(
            f"{','.join(str(d) for d in w['days'])} {w['start']}-{w['end']}" for w in windows
        )
        spans_tr = "; ".join(
            f"{','.join(DAYS_TR[d] for d in w['days'])} {w['start']}-{w['end']}" for w in windows
        )
        raise ProblemError(
            403,
            "time-window",
            f"User {username} may work only in these windows ({zone}, Monday = 0): {spans}.",
            f"{username} kullanıcısı yalnızca şu zamanlarda çalışabilir ({zone}): {spans_tr}.",
            title="Outside the allowed hours",
        )
