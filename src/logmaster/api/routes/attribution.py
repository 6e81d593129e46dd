"""Attribution: who used this IP address (and port) at that moment? (compliance/attribution.py)

Hops are shown only on devices of the caller's ``DeviceScope("attribute")``. A hop on another
device is kept in its place with ``permitted: false`` and no data at all (no device, no times,
no addresses, no line), so the caller learns that the chain goes on elsewhere and whom to ask,
never what that device logged. An internal address learned only from such a hop is hidden too.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from logmaster.api.audit import OK, record
from logmaster.api.deps import DeviceScope, Principal, SourceIp, device_scope, require
from logmaster.api.logdata import LogData, LogDataDep, rfc3339, zone_of
from logmaster.api.problems import PROBLEM_RESPONSES, ProblemError, bad_request
from logmaster.api.routes.search import query_problem
from logmaster.compliance.attribution import Chain, Hop, attribute
from logmaster.db import Device
from logmaster.index.query import QueryError, parse_time
from logmaster.parsers.base import ip as normal_ip
from logmaster.parsers.base import mac as normal_mac

router = APIRouter(prefix="/attribution", tags=["attribution"], responses=PROBLEM_RESPONSES)

NOT_PERMITTED = "not permitted: this hop is on a device you may not attribute on"
NOT_PERMITTED_THROUGH = "not permitted: this hop was found through a hop you may not see"


class CitationOut(BaseModel):
    """An archive line a hop stands on."""

    device: str
    file: str
    offset: int
    line: str


class HopOut(BaseModel):
    """One hop; when ``permitted`` is false every other field is empty."""

    kind: Literal["nat", "dhcp", "hotspot"]
    permitted: bool
    device: str | None = None
    timezone: str | None = None
    start: str | None = None
    end: str | None = None
    expires: str | None = None
    inner_ip: str | None = None
    inner_port: int | None = None
    outer_ip: str | None = None
    outer_port: int | None = None
    mac: str | None = None
    user: str | None = None
    note: str = ""
    evidence: list[CitationOut] = Field(default_factory=list)


class ChainOut(BaseModel):
    internal_ip: str | None
    internal_port: int | None
    nat: HopOut | None
    leases: list[HopOut]
    logins: list[HopOut]
    macs: list[str]
    users: list[str]


class AttributionOut(BaseModel):
    """The candidates for the subject at the moment, each hop citing its archive lines."""

    ip: str | None
    port: int | None
    mac: str | None
    at: str
    window: int
    chains: list[ChainOut]
    ambiguous: bool
    missing: list[str] = Field(description="Hops that found nothing, and which log to enable.")


def _hop(data: LogData, hop: Hop, kind: str, scope: DeviceScope) -> HopOut:
    s = hop.session
    if not scope.allows(s.device):
        return _hidden(kind)
    zone = data.devices.zone(s.device)

    def when(t: dt.datetime | None) -> str | None:
        return rfc3339(t, zone) if t is not None else None

    return HopOut(
        kind=kind,
        permitted=True,
        device=s.device,
        timezone=data.devices.timezone_name(s.device),
        start=when(s.start),
        end=when(s.end),
        expires=when(s.expires),
        inner_ip=s.inner_ip,
        inner_port=s.inner_port,
        outer_ip=s.outer_ip,
        outer_port=s.outer_port,
        mac=s.mac,
        user=s.user,
        note=hop.note,
        evidence=[
            CitationOut(device=c.device, file=c.file, offset=c.offset, line=c.line)
            for c in hop.evidence
        ],
    )


def _hidden(kind: str, through: bool = False) -> HopOut:
    note = NOT_PERMITTED_THROUGH if through else NOT_PERMITTED
    return HopOut(kind=kind, permitted=False, note=note)


def _chain(
    data: LogData, chain: Chain, scope: DeviceScope, asked_ip: str | None, asked_mac: str | None
) -> ChainOut:
    """The chain as the caller may see it.

    A hop is shown when its device is permitted *and* the caller could have reached it without
    a hidden hop: a lease found from the internal address of a hidden NAT hop would reveal that
    NAT translation just as well.
    """
    nat = _hop(data, chain.nat, "nat", scope) if chain.nat else None
    ip_known = nat.permitted if nat is not None else asked_ip is not None
    leases = []
    for h in chain.leases:
        reachable = ip_known or (asked_mac is not None and h.session.mac == asked_mac)
        leases.append(_hop(data, h, "dhcp", scope) if reachable else _hidden("dhcp", True))
    macs = {h.mac for h in leases if h.permitted and h.mac} | ({asked_mac} if asked_mac else set())
    lease_ips = {h.inner_ip for h in leases if h.permitted and h.inner_ip}
    logins = []
    for h in chain.logins:
        s = h.session
        reachable = (
            (ip_known and s.inner_ip == chain.internal_ip)
            or (s.mac is not None and s.mac in macs)
            or (s.inner_ip is not None and s.inner_ip in lease_ips)
        )
        logins.append(_hop(data, h, "hotspot", scope) if reachable else _hidden("hotspot", True))
    return ChainOut(
        internal_ip=chain.internal_ip if ip_known else None,
        internal_port=chain.internal_port if ip_known else None,
        nat=nat,
        leases=leases,
        logins=logins,
        macs=sorted({h.mac for h in leases if h.permitted and h.mac}),
        users=sorted({h.user for h in logins if h.permitted and h.user}),
    )


@router.get("", response_model=AttributionOut)
def attribute_ip(
    data: LogDataDep,
    scope: Annotated[DeviceScope, device_scope("attribute")],
    principal: Annotated[Principal, require("attribute")],
    ip_address: SourceIp,
    at: Annotated[
        str,
        Query(
            max_length=64, description="The moment: 2026-11-28T10:00:05, 28.11.2026 10:00:05, -1h."
        ),
    ],
    ip: Annotated[
        str | None, Query(max_length=64, description="Public (post-NAT) or internal IP.")
    ] = None,
    port: Annotated[int | None, Query(ge=0, le=65535, description="Public source port.")] = None,
    mac: Annotated[
        str | None, Query(max_length=32, description="Start from a MAC instead.")
    ] = None,
    window: Annotated[
        int, Query(ge=0, le=3600, description="Seconds of tolerance around 'at'.")
    ] = 60,
    tz: Annotated[
        str, Query(max_length=64, description="Zone of 'at' without an offset.")
    ] = "Europe/Istanbul",
) -> AttributionOut:
    """Who used this IP (and port), or this MAC, at that moment, on the permitted devices."""
    if (ip is None) == (mac is None):
        raise bad_request("Give either ip or mac.", "ip ya da mac verin (yalnız birini).")
    norm_ip = normal_ip(ip) if ip is not None else None
    norm_mac = normal_mac(mac) if mac is not None else None
    if ip is not None and norm_ip is None:
        raise bad_request(f"{ip!r} is not an IP address.", f"{ip!r} bir IP adresi değil.")
    if mac is not None and norm_mac is None:
        raise bad_request(f"{mac!r} is not a MAC address.", f"{mac!r} bir MAC adresi değil.")
    zone = zone_of(tz, "UTC")
    if zone.key != tz:
        raise bad_request(f"Unknown timezone {tz!r}.", f"Bilinmeyen saat dilimi {tz!r}.")
    try:
        moment = parse_time(at, dt.datetime.now(zone), zone)
    except QueryError as exc:
        raise query_problem(exc, "time") from None
    with data.read_engine.connect() as conn:
        locations = dict(conn.execute(sa.select(Device.slug, Device.location)).all())
    try:
        result = attribute(
            data.index.get(),
            data.settings.archive_dir,
            at=moment,
            ip=norm_ip,
            port=port,
            mac=norm_mac,
            window=window,
            locations=locations,
            node=data.settings.cluster.node,
        )
    except (OverflowError, ValueError) as exc:
        raise ProblemError(
            400,
            "bad-moment",
            f"Cannot attribute at {at}: {exc}.",
            f"{at} anı için atıf yapılamaz: {exc}.",
        ) from None
    chains = [_chain(data, c, scope, norm_ip, norm_mac) for c in result.chains]
    hidden = {
        c.internal_ip
        for c, out in zip(result.chains, chains, strict=True)
        if c.internal_ip and out.internal_ip is None
    }
    missing = [
        m
        for m in result.missing
        if not any(re.search(rf"(?<![\w.:]){re.escape(h)}(?![\w.:])", m) for h in hidden)
    ]
    if len(missing) < len(result.missing) or any(
        not h.permitted for c in chains for h in ([c.nat] if c.nat else []) + c.leases + c.logins
    ):
        missing.append(
            "some hops are on devices you may not attribute on: ask an administrator who may"
        )
    record(
        data.engine,
        actor=principal.username,
        source_ip=ip_address,
        action="attribution",
        target=f"{norm_mac or norm_ip}{'' if port is None else f':{port}'}@{moment.isoformat()}",
        result=OK,
        details={"window": window, "chains": len(chains)},
    )
    return AttributionOut(
        ip=norm_ip,
        port=port,
        mac=norm_mac,
        at=moment.isoformat(),
        window=window,
        chains=chains,
        ambiguous=result.ambiguous,
        missing=missing,
    )
