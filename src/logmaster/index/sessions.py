"""Sessions from events: NAT translations, DHCP leases, hotspot logins, as interval operations.

The indexer calls :func:`session_ops` for every event; the result is applied by the backend in
the same batch. Every operation is idempotent (keyed by the archive line that caused it), so a
batch replayed after a crash leaves the sessions exactly as they were.

==============================  =====================================================
event                           operation
==============================  =====================================================
event.duration + source.nat.ip  ``span`` [@timestamp - duration, @timestamp] (FortiGate, ASA
                                teardown lines carry the whole interval)
action translation-built        ``open`` NAT, bounded by ``nat_timeout`` until its teardown
action translation-teardown     ``close`` the newest open NAT with the same addresses
other lines with source.nat.ip  ``open`` NAT observed at that moment (MikroTik logs the first
                                packet of a connection), bounded by ``nat_timeout``
action dhcp-assign              ``renew`` the lease of client.ip for client.mac (a different
                                MAC closes the old lease), bounded by ``lease_timeout``
action dhcp-release             ``close`` the lease of client.ip
action login                    ``open`` hotspot session of user.name at source.ip
action logout                   ``close`` it
==============================  =====================================================
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from logmaster.index.base import SessionOp
from logmaster.index.fields import micros
from logmaster.parsers.base import (
    DHCP_ASSIGN,
    DHCP_RELEASE,
    LOGIN,
    LOGOUT,
    NAT_BUILT,
    NAT_TEARDOWN,
)


@dataclass(frozen=True)
class Timeouts:
    """How long an interval without an end line is assumed to last (seconds)."""

    nat: int = 300
    nat_translation: int = 3 * 3600  # ASA's default xlate timeout
    lease: int = 86_400
    hotspot: int = 86_400


def session_ops(
    event: dict[str, Any], ref_file: str, ref_offset: int, day: dt.date, timeouts: Timeouts
) -> list[SessionOp]:
    action = event.get("event.action")
    device = event.get("observer.name", "")
    stamp = event.get("@timestamp")
    if not isinstance(stamp, dt.datetime):
        return []
    at = micros(stamp)
    ref = {"device": device, "ref_file": ref_file, "ref_offset": ref_offset, "day": day}
    nat_ip = event.get("source.nat.ip")
    if nat_ip:
        keys = {
            "inner_ip": event.get("source.ip"),
            "inner_port": event.get("source.port"),
            "outer_ip": nat_ip,
            "outer_port": event.get("source.nat.port"),
            "transport": event.get("network.transport"),
        }
        duration = event.get("event.duration")
        if isinstance(duration, int) and duration >= 0:
            return [SessionOp("span", "nat", at=at - duration // 1000, end=at, **ref, **keys)]
        if action == NAT_TEARDOWN:
            return [SessionOp("close", "nat", at=at, **ref, **keys)]
        timeout = timeouts.nat_translation if action == NAT_BUILT else timeouts.nat
        return [SessionOp("open", "nat", at=at, expires=at + timeout * 1_000_000, **ref, **keys)]
    if action == DHCP_ASSIGN and event.get("client.ip"):
        return [
            SessionOp(
                "renew",
                "dhcp",
                at=at,
                expires=at + timeouts.lease * 1_000_000,
                inner_ip=event["client.ip"],
                mac=event.get("client.mac"),
                hostname=event.get("host.hostname"),
                **ref,
            )
        ]
    if action == DHCP_RELEASE and event.get("client.ip"):
        return [
            SessionOp(
                "close",
                "dhcp",
                at=at,
                inner_ip=event["client.ip"],
                mac=event.get("client.mac"),
                **ref,
            )
        ]
    if action == LOGIN and event.get("user.name"):
        return [
            SessionOp(
                "open",
                "hotspot",
                at=at,
                expires=at + timeouts.hotspot * 1_000_000,
                user=event["user.name"],
                inner_ip=event.get("source.ip"),
                mac=event.get("source.mac"),
                **ref,
            )
        ]
    if action == LOGOUT and event.get("user.name"):
        return [
            SessionOp(
                "close",
                "hotspot",
                at=at,
                user=event["user.name"],
                inner_ip=event.get("source.ip"),
                **ref,
            )
        ]
    return []
