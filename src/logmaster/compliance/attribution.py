"""Attribution: who used this IP address (and port) at that moment?

public IP[:port] + time -> NAT session(s) covering it -> internal IP[:port] -> DHCP lease of that
internal IP at that moment -> MAC -> hotspot login of that IP or MAC -> user.

Every hop cites the archive lines it stands on (device, archive file, byte offset, the line), so
the answer can be checked against the legal record. Several candidates at a hop are all shown,
never silently reduced to one; a hop with no candidate says which log is missing and how to turn
it on. The search also starts from an internal IP (no NAT hop) or from a MAC.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from logmaster.index.base import IndexBackend, Session


@dataclass
class Citation:
    device: str
    file: str
    offset: int
    line: str


@dataclass
class Hop:
    session: Session
    evidence: list[Citation]
    # "end line", or how the end was assumed ("no end line: assumed to last until ...")
    note: str = ""


@dataclass
class Chain:
    internal_ip: str | None
    internal_port: int | None = None
    nat: Hop | None = None
    leases: list[Hop] = field(default_factory=list)
    logins: list[Hop] = field(default_factory=list)

    @property
    def macs(self) -> list[str]:
        return sorted({h.session.mac for h in self.leases if h.session.mac})

    @property
    def users(self) -> list[str]:
        return sorted({h.session.user for h in self.logins if h.session.user})


@dataclass
class Attribution:
    ip: str | None
    port: int | None
    mac: str | None
    at: dt.datetime
    window: int
    chains: list[Chain] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ambiguous(self) -> bool:
        return len(self.chains) > 1 or any(len(c.macs) > 1 or len(c.users) > 1 for c in self.chains)


LineReader = Callable[[str, int], str]


def read_line(archive_root: Path, file: str, offset: int, node: str | None = None) -> str:
    """The archive line at ``offset`` of ``file`` (for citations).

    ``file`` is the index's reference: ``NODE:path`` in an index shared by several nodes
    (``cluster.py``). A line of another node's archive is not here: the citation says where.
    """
    from logmaster.archive.reader import open_day
    from logmaster.cluster import split_ref

    held, rel = split_ref(file)
    if held is not None and held != node:
        return f"<held by node {held}: read it on that node>"
    path = archive_root / rel
    try:
        # A sealed day may be compressed; offsets are in the uncompressed bytes either way.
        with open_day(path) as fh:
            fh.seek(offset)
            return fh.readline().rstrip(b"\n").decode("utf-8", "replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc.strerror}>"


def _cite(read: LineReader, s: Session) -> tuple[list[Citation], str]:
    cites = [
        Citation(
            s.device,
            s.start_ref[0],
            s.start_ref[1],
            read(s.start_ref[0], s.start_ref[1]),
        )
    ]
    if s.end_ref is not None and s.end_ref != s.start_ref:
        cites.append(
            Citation(s.device, s.end_ref[0], s.end_ref[1], read(s.end_ref[0], s.end_ref[1]))
        )
    if s.end is not None:
        note = "closed by its end line" if s.end_ref != s.start_ref else "interval in one line"
    elif s.expires is not None:
        note = f"no end line: assumed to last until {s.expires.isoformat()}"
    else:
        note = "no end line"
    return cites, note


class Sites:
    """Which devices stand at the same site (device location), to join hops within a site.

    Private ranges repeat from site to site (every MikroTik hands out 192.168.88.x): a lease at
    another site is not behind this site's NAT. When a hop has candidates at the site of the
    previous hop, only those are kept; otherwise every candidate is shown.
    """

    def __init__(self, locations: dict[str, str] | None = None) -> None:
        self.locations = locations or {}

    def same(self, a: str, b: str) -> bool:
        if a == b:
            return True
        loc = self.locations.get(a)
        return bool(loc) and loc == self.locations.get(b)

    def prefer(self, hops: list[Hop], anchor: str | None) -> list[Hop]:
        if anchor is None:
            return hops
        near = [h for h in hops if self.same(h.session.device, anchor)]
        return near or hops


def attribute(
    backend: IndexBackend,
    archive_root: Path,
    *,
    at: dt.datetime,
    ip: str | None = None,
    port: int | None = None,
    mac: str | None = None,
    window: int = 60,
    locations: dict[str, str] | None = None,
    node: str | None = None,
) -> Attribution:
    """Follow the hops from ``ip`` (+``port``) or ``mac`` at ``at`` (± ``window`` seconds).

    ``node``: this node's name, when the index is shared by several nodes (citations of lines
    in another node's archive then name that node instead of reading them).
    """
    reader: LineReader = functools.partial(read_line, archive_root, node=node)
    sites = Sites(locations)
    result = Attribution(ip, port, mac, at, window)
    lo = at - dt.timedelta(seconds=window)
    hi = at + dt.timedelta(seconds=window)
    if mac is not None:
        chain = Chain(internal_ip=None)
        _leases(backend, reader, chain, lo, hi, mac=mac)
        _logins(
            backend,
            reader,
            chain,
            lo,
            hi,
            mac=mac,
            ips=[h.session.inner_ip for h in chain.leases],
        )
        anchor = chain.leases[0].session.device if len(chain.leases) == 1 else None
        chain.logins = sites.prefer(chain.logins, anchor)
        result.chains.append(chain)
        _explain(result)
        return result
    assert ip is not None
    nats = backend.sessions("nat", lo, hi, outer_ip=ip, outer_port=port)
    if nats:
        for s in nats:
            cites, note = _cite(reader, s)
            result.chains.append(Chain(s.inner_ip, s.inner_port, Hop(s, cites, note)))
    elif _is_internal(ip):
        result.chains.append(Chain(ip, port))
    else:
        where = f"{ip}:{port}" if port is not None else ip
        result.missing.append(
            f"no NAT log covers {where} at {at.isoformat()}: enable logging of NAT "
            "translations on the gateway (MikroTik: log=yes on the srcnat rule; FortiGate: "
            "log traffic on the policy; Cisco ASA: messages 305011/305012), or widen --window"
        )
    for chain in result.chains:
        if chain.internal_ip is None:
            continue
        nat_device = chain.nat.session.device if chain.nat else None
        _leases(backend, reader, chain, lo, hi, ip=chain.internal_ip)
        chain.leases = sites.prefer(chain.leases, nat_device)
        _logins(backend, reader, chain, lo, hi, ips=[chain.internal_ip], mac=None)
        for m in chain.macs:
            if not any(h.session.mac == m for h in chain.logins):
                _logins(backend, reader, chain, lo, hi, mac=m)
        lease_device = chain.leases[0].session.device if len(chain.leases) == 1 else None
        chain.logins = sites.prefer(chain.logins, nat_device or lease_device)
    _explain(result)
    return result


# Addresses that only exist behind a NAT: RFC 1918, carrier-grade NAT (RFC 6598), link-local,
# IPv6 unique-local. Not Python's is_private, which also counts documentation ranges.
INTERNAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


def _is_internal(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr.version == n.version and addr in n for n in INTERNAL)


def _leases(
    backend: IndexBackend,
    read: LineReader,
    chain: Chain,
    lo: dt.datetime,
    hi: dt.datetime,
    *,
    ip: str | None = None,
    mac: str | None = None,
) -> None:
    for s in backend.sessions("dhcp", lo, hi, inner_ip=ip, mac=mac):
        if any(h.session.start_ref == s.start_ref for h in chain.leases):
            continue
        cites, note = _cite(read, s)
        chain.leases.append(Hop(s, cites, note))


def _logins(
    backend: IndexBackend,
    read: LineReader,
    chain: Chain,
    lo: dt.datetime,
    hi: dt.datetime,
    *,
    ips: list[str | None] | None = None,
    mac: str | None = None,
) -> None:
    found: list[Session] = []
    for one in ips or []:
        if one:
            found.extend(backend.sessions("hotspot", lo, hi, inner_ip=one))
    if mac:
        found.extend(backend.sessions("hotspot", lo, hi, mac=mac))
    for s in found:
        if any(h.session.start_ref == s.start_ref for h in chain.logins):
            continue
        cites, note = _cite(read, s)
        chain.logins.append(Hop(s, cites, note))


def _explain(result: Attribution) -> None:
    for chain in result.chains:
        who = chain.internal_ip or result.mac
        if chain.internal_ip and not chain.leases:
            result.missing.append(
                f"no DHCP lease covers {chain.internal_ip} at {result.at.isoformat()}: send the "
                "DHCP server's log (MikroTik: /system logging add topics=dhcp; ISC dhcpd: "
                "log-facility) or the address is static"
            )
        if not chain.logins:
            result.missing.append(
                f"no hotspot login covers {who} at {result.at.isoformat()}: send the hotspot's "
                "log (MikroTik: topics=hotspot,account; pfSense: captive portal logging)"
            )
