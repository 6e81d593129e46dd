"""The device registry: which device a sender is, and the operations on devices.

A device is matched by sender address: the most specific CIDR that contains it wins; devices that
share a network are told apart by the hostname in the syslog header (a relay forwarding for
several hosts). A sender that matches nothing becomes a ``pending`` device of its own, named
``ip-<address>``, and is archived like any other; past ``max_pending_devices`` unknown senders
share the pending device ``unregistered``. Lines of ``rejected`` devices are counted and not
archived: rejecting is the operator saying the sender is not theirs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from logmaster.archive.line import Clock
from logmaster.archive.writer import DayFile
from logmaster.collector.header import read_header
from logmaster.collector.stats import DeviceStats
from logmaster.db import Device, DeviceSource, registry_version, sessions, utcnow

log = logging.getLogger(__name__)

STATUSES = ("pending", "approved", "rejected", "retired")
UNREGISTERED = "unregistered"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DeviceError(ValueError):
    """A device operation that cannot be done, with a message for the operator."""


@dataclass(eq=False)
class DeviceEntry:
    """What the ingest loop needs of a device, plus its per-device caches."""

    slug: str
    status: str
    zone: ZoneInfo
    hostname: str | None
    stats: DeviceStats
    clock: Clock
    # The day file the device wrote to last (owned by the archive writer).
    day_file: DayFile | None = None
    seen: bool = False
    # The node holding the device's archive (registry column devices.node); None: nobody yet.
    node: str | None = None


@dataclass
class _Route:
    network: Network
    entries: list[DeviceEntry] = field(default_factory=list)


class Registry:
    """Resolves sender addresses to devices; used by the single archive thread only."""

    def __init__(
        self, engine: Engine, default_timezone: str, max_pending: int, node: str | None = None
    ) -> None:
        self.engine = engine
        # This collector's node: recorded as the holder of the devices it archives first.
        self.node = node
        # Devices held by another node that sent here, already named in the log.
        self._foreign_warned: set[str] = set()
        self.default_timezone = default_timezone
        self.max_pending = max_pending
        self.stats: dict[str, DeviceStats] = {}
        self._clocks: dict[str, Clock] = {}
        self.entries: dict[str, DeviceEntry] = {}
        self._routes: list[_Route] = []
        # sender ip -> the device, or the candidates to choose from by hostname
        self.cache: dict[str, DeviceEntry | list[DeviceEntry]] = {}
        self._version: tuple[object, ...] | None = None
        # (slug, cidr, hostname) of pending devices not yet in the database
        self._queued: list[tuple[str, str | None, str | None]] = []
        self.load()

    @property
    def unregistered_lines(self) -> int:
        """Lines archived under 'unregistered' (resolve() only sees a sender's first line)."""
        stats = self.stats.get(UNREGISTERED)
        return stats.received if stats is not None else 0

    # -- loading ----------------------------------------------------------------------------

    def load(self) -> None:
        with sessions(self.engine)() as s:
            devices = s.scalars(select(Device)).all()
            old = self.entries
            self.entries = {}
            routes: dict[Network, _Route] = {}
            for dev in devices:
                entry = old.get(dev.slug)
                zone = ZoneInfo(dev.timezone)
                if entry is None or entry.zone.key != zone.key:
                    entry = self._entry(dev.slug, dev.status, zone, dev.hostname)
                entry.status = dev.status
                entry.hostname = dev.hostname
                entry.node = dev.node
                self.entries[dev.slug] = entry
                for src in dev.sources:
                    net = ipaddress.ip_network(src.cidr, strict=False)
                    routes.setdefault(net, _Route(net)).entries.append(entry)
        self._routes = sorted(routes.values(), key=lambda r: r.network.prefixlen, reverse=True)
        self.cache.clear()
        self._version = registry_version(self.engine)

    def _clock(self, zone: ZoneInfo) -> Clock:
        clock = self._clocks.get(zone.key)
        if clock is None:
            clock = self._clocks[zone.key] = Clock(zone)
        return clock

    def refresh(self) -> bool:
        """Save new pending devices, then reload if the database changed (CLI or API edits)."""
        self.save_pending()
        version = registry_version(self.engine)
        if version == self._version:
            return False
        self.load()
        return True

    # -- resolving --------------------------------------------------------------------------

    def resolve(self, ip: str, raw: bytes) -> DeviceEntry:
        """The device of a message from ``ip`` (slow path; callers check ``cache`` first)."""
        hit = self.cache.get(ip)
        if hit is None:
            hit = self._match(ip)
            self.cache[ip] = hit
        if isinstance(hit, DeviceEntry):
            return hit
        return self._by_hostname(ip, hit, read_header(raw).hostname)

    def _match(self, ip: str) -> DeviceEntry | list[DeviceEntry]:
        addr = ipaddress.ip_address(ip)
        candidates: list[DeviceEntry] = []
        for route in self._routes:
            if addr.version == route.network.version and addr in route.network:
                candidates.extend(route.entries)
        if len(candidates) == 1 and candidates[0].hostname is None:
            return candidates[0]
        if not candidates:
            return self._create_pending(ip, None)
        if all(c.hostname is None for c in candidates):
            return candidates[0]  # most specific network first
        return candidates

    def _by_hostname(self, ip: str, candidates: list[DeviceEntry], host: str | None) -> DeviceEntry:
        if host:
            for entry in candidates:
                if entry.hostname and entry.hostname.lower() == host.lower():
                    return entry
        for entry in candidates:
            if entry.hostname is None:
                return entry
        # A relay forwarding for a host nobody registered: that host becomes a pending device.
        entry = self._create_pending(ip, host)
        if entry.slug != UNREGISTERED:
            # The cached candidates of this address must know it, or the next message of the
            # same host would create another pending device (host-x-2, ...) until a reload.
            candidates.append(entry)
        return entry

    def _create_pending(self, ip: str, hostname: str | None) -> DeviceEntry:
        pending = sum(1 for e in self.entries.values() if e.status == "pending")
        if pending >= self.max_pending:
            return self._unregistered()
        base = ("ip-" if hostname is None else "host-") + slug_for(
            ip if hostname is None else hostname
        )
        slug = self._free_slug(base)
        cidr = str(ipaddress.ip_network(ip))
        # Stored in the database by save_pending() on the next refresh, in one transaction for
        # all new senders: a first burst of 1,000 devices must not stall the archive thread
        # for a commit each.
        self._queued.append((slug, cidr, hostname))
        log.info(
            "New sender; created a pending device for it.",
            extra={"device": slug, "sender": ip, "hostname": hostname or "-"},
        )
        entry = self._entry(slug, "pending", ZoneInfo(self.default_timezone), hostname)
        self._routes.insert(0, _Route(ipaddress.ip_network(cidr), [entry]))
        return entry

    def _free_slug(self, base: str) -> str:
        candidate = base
        n = 2
        while candidate in self.entries:
            candidate = f"{base}-{n}"
            n += 1
        return candidate

    def save_pending(self) -> None:
        """Store the pending devices created since the last call (raises if the DB is down)."""
        if not self._queued:
            return
        queued = self._queued
        try:
            with sessions(self.engine)() as s, s.begin():
                for slug, cidr, hostname in queued:
                    s.add(self._device_row(slug, cidr, hostname))
        except IntegrityError:
            # Someone created one of these slugs meanwhile (CLI, API): store one by one and
            # name the ones that clash; their lines are already in the archive folder.
            for slug, cidr, hostname in queued:
                try:
                    with sessions(self.engine)() as s, s.begin():
                        s.add(self._device_row(slug, cidr, hostname))
                except IntegrityError:
                    log.error(
                        "A pending device's slug was taken meanwhile; its lines share "
                        "that device's archive folder. Check the device.",
                        extra={"device": slug, "sender": cidr or "-"},
                    )
        self._queued = []

    def _device_row(self, slug: str, cidr: str | None, hostname: str | None) -> Device:
        dev = Device(
            slug=slug,
            timezone=self.default_timezone,
            status="pending",
            hostname=hostname,
            node=self.node,
        )
        if cidr:
            dev.sources.append(DeviceSource(cidr=cidr))
        return dev

    def _entry(self, slug: str, status: str, zone: ZoneInfo, hostname: str | None) -> DeviceEntry:
        entry = DeviceEntry(
            slug,
            status,
            zone,
            hostname,
            self.stats.setdefault(slug, DeviceStats()),
            self._clock(zone),
        )
        self.entries[slug] = entry
        return entry

    def _unregistered(self) -> DeviceEntry:
        entry = self.entries.get(UNREGISTERED)
        if entry is None:
            self._queued.append((UNREGISTERED, None, None))
            log.warning(
                "Too many pending devices; unknown senders now share the device "
                "'unregistered'. Approve or reject pending devices.",
                extra={"max_pending_devices": self.max_pending},
            )
            entry = self._entry(UNREGISTERED, "pending", ZoneInfo(self.default_timezone), None)
        return entry

    def mark_seen(self) -> None:
        """Store last_seen_at of the devices that sent since the last call."""
        seen = [e.slug for e in self.entries.values() if e.seen]
        if not seen:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            # last_seen must not bump updated_at (the reload fingerprint); an UPDATE that does
            # not set updated_at gets its onupdate default even outside the ORM.
            conn.execute(
                update(Device)
                .where(Device.slug.in_(seen))
                .values(last_seen_at=now, updated_at=Device.updated_at)
            )
            if self.node is not None:
                # The first collector to archive a device holds it: its node seals the
                # device's days and answers for its archive (several nodes on one database).
                claim = [s for s in seen if self.entries[s].node is None]
                if claim:
                    conn.execute(
                        update(Device)
                        .where(Device.slug.in_(claim), Device.node.is_(None))
                        .values(node=self.node, updated_at=Device.updated_at)
                    )
        for slug in seen:
            entry = self.entries[slug]
            entry.seen = False
            if self.node is not None and entry.node is None:
                entry.node = self.node  # the claim may have lost a race: the next load() says
            elif entry.node not in (None, self.node) and slug not in self._foreign_warned:
                self._foreign_warned.add(slug)
                log.warning(
                    "A device held by another node sends to this node; its lines are archived "
                    "here too and sealed here. Point the device (or the balancer) at one node.",
                    extra={"device": slug, "holder": entry.node, "node": self.node},
                )


def slug_for(text: str) -> str:
    """A folder-safe slug: lower case, [a-z0-9._-], IPv6 colons as dashes."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    return slug[:56] or "device"


# -- operations (command line and, later, the API) --------------------------------------------


def add_device(
    engine: Engine,
    slug: str,
    sources: list[str],
    *,
    name: str = "",
    location: str = "",
    timezone: str,
    hostname: str | None = None,
    status: str = "approved",
    log_format: str | None = None,
) -> Device:
    _check_format(log_format)
    if not _SLUG.match(slug):
        raise DeviceError(
            f"slug {slug!r}: use 1-64 of a-z 0-9 . _ - starting with a letter or "
            "digit; it names the archive folder"
        )
    try:
        ZoneInfo(timezone)
    except Exception as exc:
        raise DeviceError(
            f"unknown timezone {timezone!r} (use an IANA name such as Europe/Istanbul)"
        ) from exc
    nets = []
    for src in sources:
        try:
            nets.append(str(ipaddress.ip_network(src, strict=False)))
        except ValueError as exc:
            raise DeviceError(f"{src!r} is not an IP address or CIDR network") from exc
    if not nets:
        raise DeviceError("give at least one sender address or network (--ip)")
    with sessions(engine)() as s, s.begin():
        if s.scalar(select(Device).where(Device.slug == slug)) is not None:
            raise DeviceError(f"device {slug!r} already exists")
        dev = Device(
            slug=slug,
            name=name,
            location=location,
            timezone=timezone,
            status=status,
            hostname=hostname or None,
            format=log_format,
        )
        dev.sources = [DeviceSource(cidr=n) for n in nets]
        s.add(dev)
    return dev


def _check_format(log_format: str | None) -> None:
    from logmaster.parsers import BY_NAME

    if log_format is not None and log_format not in BY_NAME:
        raise DeviceError(f"unknown format {log_format!r}; known: {', '.join(sorted(BY_NAME))}")


def _existing(s: Session, slug: str) -> Device:
    dev: Device | None = s.scalar(select(Device).where(Device.slug == slug))
    if dev is None:
        raise DeviceError(f"no device {slug!r}; `logmaster device list` shows them")
    return dev


def set_format(engine: Engine, slug: str, log_format: str | None) -> Device:
    """Pin a device to one parser (None: detect the format of every line)."""
    _check_format(log_format)
    with sessions(engine)() as s, s.begin():
        dev = _existing(s, slug)
        dev.format = log_format
        dev.updated_at = dt.datetime.now(dt.UTC)
    return dev


def list_devices(engine: Engine, status: str | None = None) -> list[Device]:
    with sessions(engine)() as s:
        query = select(Device).order_by(Device.slug)
        if status:
            query = query.where(Device.status == status)
        return list(s.scalars(query).all())


def set_status(engine: Engine, slug: str, status: str) -> Device:
    """Approve, reject or retire a device. Rejected and retired are reversible by approving."""
    if status not in STATUSES:
        raise DeviceError(f"unknown status {status!r}")
    with sessions(engine)() as s, s.begin():
        dev = _existing(s, slug)
        dev.status = status
        dev.updated_at = dt.datetime.now(dt.UTC)
    return dev
