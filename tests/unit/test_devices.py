"""Device registry on SQLite and PostgreSQL, and the syslog header reader it relies on."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from logmaster.archive.writer import ArchiveWriter
from logmaster.collector.devices import (
    UNREGISTERED,
    DeviceEntry,
    DeviceError,
    Registry,
    add_device,
    list_devices,
    set_status,
    slug_for,
)
from logmaster.collector.header import Header, read_header
from logmaster.collector.ingest import Ingest
from logmaster.db import make_engine, migrate

# The PostgreSQL server of the test machine and of CI (trust auth); override with TEST_PG_DSN.
PG_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


# -- backends ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server for this test session, dropped at the end."""
    name = f"lm_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_DSN} is required for the postgres tests: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(PG_DSN)
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", "5432"), info["user"]
    url = f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty metadata database of each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'logmaster.db'}"
        migrate(url)
        eng = make_engine(url)
    else:
        eng = make_engine(request.getfixturevalue("pg_url"))
        with eng.begin() as conn:
            conn.execute(text("TRUNCATE device_sources, devices RESTART IDENTITY CASCADE"))
    try:
        yield eng
    finally:
        eng.dispose()


def registry(engine: Engine, max_pending: int = 100) -> Registry:
    return Registry(engine, "Europe/Istanbul", max_pending)


def slugs(engine: Engine, status: str | None = None) -> list[str]:
    return [d.slug for d in list_devices(engine, status)]


def rfc3164(host: str, text: str = "app: hello") -> bytes:
    return f"<13>Nov 28 10:00:00 {host} {text}".encode()


def rfc5424(host: str) -> bytes:
    return f"<13>1 2026-11-28T10:00:00.000Z {host} app - - - hello".encode()


# -- header -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
            b'[exampleSDID@32473 iut="3"] An application event',
            Header(165, "2003-10-11T22:14:15.003Z", "mymachine.example.com"),
        ),
        (b"<13>1 - - app - - - no time, no host", Header(13, None, None)),
        (
            b"<13>1 2026-11-28T10:00:00+03:00 - app - - - x",
            Header(13, "2026-11-28T10:00:00+03:00", None),
        ),
        (
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            Header(34, "Oct 11 22:14:15", "mymachine"),
        ),
        (b"<34>Oct  1 22:14:15 gw1 su: x", Header(34, "Oct  1 22:14:15", "gw1")),
        (b"<34>Oct 11 22:14:15 su: 'su root' failed", Header(34, "Oct 11 22:14:15", None)),
        (b"<34>Oct 11 22:14:15 sshd[4242]: Accepted", Header(34, "Oct 11 22:14:15", None)),
        (b"<13>Nov 28 2026 10:00:00 gw1 app: x", Header(13, "Nov 28 2026 10:00:00", "gw1")),
        (b"<13>Nov 28 10:00:00.123 gw1 app: x", Header(13, "Nov 28 10:00:00.123", "gw1")),
        (b"<189>123: Nov 28 10:00:00: gw1 %SYS-5: x", Header(189, "Nov 28 10:00:00", "gw1")),
        (
            b"<13>2026-11-28T10:00:00+03:00 fw.local kernel: x",
            Header(13, "2026-11-28T10:00:00+03:00", "fw.local"),
        ),
        (b"<13>hello world", Header(13, None, None)),
        (b"hello world", Header(None, None, None)),
        (b"", Header(None, None, None)),
        (b"<1234>Nov 28 10:00:00 gw1 x", Header(None, None, None)),
        (b"<13>Nov 28 10:00:00 h\xffst app: x", Header(13, "Nov 28 10:00:00", "h\ufffdst")),
    ],
)
def test_read_header(raw: bytes, expected: Header) -> None:
    """PRI, timestamp text and hostname of RFC 5424, RFC 3164 and hostless/bare messages."""
    assert read_header(raw) == expected


# -- add_device ----------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["", "Bad", "has space", "-dash", ".dot", "a/b", "x" * 65, "ü"])
def test_add_device_rejects_bad_slugs(engine: Engine, slug: str) -> None:
    """Slugs name archive folders: 1-64 of a-z 0-9 . _ - starting with a letter or digit."""
    with pytest.raises(DeviceError, match="slug"):
        add_device(engine, slug, ["10.0.0.1"], timezone="Europe/Istanbul")
    assert slugs(engine) == []


def test_add_device_accepts_good_slugs(engine: Engine) -> None:
    """Lower case, digits, dot, dash, underscore; up to 64 characters."""
    for i, slug in enumerate(["gw1", "fw.core-01_a", "9lives", "x" * 64]):
        add_device(engine, slug, [f"10.0.0.{i + 1}"], timezone="Europe/Istanbul")
    assert slugs(engine) == sorted(["gw1", "fw.core-01_a", "9lives", "x" * 64])


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "Europe/", "../etc/passwd"])
def test_add_device_rejects_bad_timezones(engine: Engine, zone: str) -> None:
    """An unknown IANA name is refused with an example of a good one."""
    with pytest.raises(DeviceError, match=r"timezone.*Europe/Istanbul"):
        add_device(engine, "gw1", ["10.0.0.1"], timezone=zone)
    assert slugs(engine) == []


@pytest.mark.parametrize("source", ["10.0.0.300", "10.0.0.0/33", "gateway", "", "::g"])
def test_add_device_rejects_bad_sources(engine: Engine, source: str) -> None:
    """A sender that is not an address or CIDR is refused, naming it."""
    with pytest.raises(DeviceError, match="not an IP address or CIDR"):
        add_device(engine, "gw1", ["10.0.0.1", source], timezone="Europe/Istanbul")
    assert slugs(engine) == []


def test_add_device_needs_a_source(engine: Engine) -> None:
    """A device without any sender address is refused."""
    with pytest.raises(DeviceError, match="at least one"):
        add_device(engine, "gw1", [], timezone="Europe/Istanbul")


def test_add_device_rejects_duplicates(engine: Engine) -> None:
    """A second device with the same slug is refused; the first is unchanged."""
    add_device(engine, "gw1", ["10.0.0.1"], timezone="Europe/Istanbul", name="first")
    with pytest.raises(DeviceError, match="already exists"):
        add_device(engine, "gw1", ["10.0.0.2"], timezone="Europe/Berlin")
    [dev] = list_devices(engine)
    assert (dev.name, dev.timezone, [s.cidr for s in dev.sources]) == (
        "first",
        "Europe/Istanbul",
        ["10.0.0.1/32"],
    )


def test_add_device_stores_canonical_networks(engine: Engine) -> None:
    """Addresses become /32 or /128, host bits of a network are cleared."""
    add_device(
        engine,
        "gw1",
        ["10.0.0.1", "10.1.2.3/16", "2001:DB8::1", "2001:db8:1::5/48"],
        timezone="Europe/Berlin",
        name="Gateway",
        location="DC1",
        hostname="gw1.example",
    )
    [dev] = list_devices(engine)
    assert sorted(s.cidr for s in dev.sources) == sorted(
        ["10.0.0.1/32", "10.1.0.0/16", "2001:db8::1/128", "2001:db8:1::/48"]
    )
    assert (dev.status, dev.name, dev.location, dev.hostname) == (
        "approved",
        "Gateway",
        "DC1",
        "gw1.example",
    )


def test_list_devices_orders_and_filters(engine: Engine) -> None:
    """list_devices is ordered by slug and filters by status."""
    for slug, ip in (("zeta", "10.0.0.3"), ("alpha", "10.0.0.1"), ("mid", "10.0.0.2")):
        add_device(engine, slug, [ip], timezone="Europe/Istanbul")
    set_status(engine, "mid", "rejected")
    assert slugs(engine) == ["alpha", "mid", "zeta"]
    assert slugs(engine, "approved") == ["alpha", "zeta"]
    assert slugs(engine, "rejected") == ["mid"]
    assert slugs(engine, "pending") == []


def test_set_status_errors(engine: Engine) -> None:
    """Unknown status or unknown device: a DeviceError for the operator."""
    add_device(engine, "gw1", ["10.0.0.1"], timezone="Europe/Istanbul")
    with pytest.raises(DeviceError, match="unknown status"):
        set_status(engine, "gw1", "deleted")
    with pytest.raises(DeviceError, match="no device 'nope'"):
        set_status(engine, "nope", "approved")
    assert set_status(engine, "gw1", "retired").status == "retired"


# -- resolving senders ---------------------------------------------------------------------


def test_exact_address_beats_networks_longest_prefix_wins(engine: Engine) -> None:
    """/32 over /16 over /8; addresses outside every network become pending devices."""
    add_device(engine, "core", ["10.0.0.0/8"], timezone="Europe/Istanbul")
    add_device(engine, "site", ["10.1.0.0/16"], timezone="Europe/Istanbul")
    add_device(engine, "fw", ["10.1.2.3"], timezone="Europe/Berlin")
    add_device(engine, "v6net", ["2001:db8::/32"], timezone="Europe/Istanbul")
    add_device(engine, "v6host", ["2001:db8::1"], timezone="Europe/Istanbul")
    reg = registry(engine)
    msg = rfc3164("whatever")
    assert reg.resolve("10.1.2.3", msg).slug == "fw"
    assert reg.resolve("10.1.2.4", msg).slug == "site"
    assert reg.resolve("10.200.0.1", msg).slug == "core"
    assert reg.resolve("2001:db8::1", msg).slug == "v6host"
    assert reg.resolve("2001:db8::2", msg).slug == "v6net"
    assert reg.resolve("10.1.2.3", msg).slug == "fw"  # from the cache
    assert isinstance(reg.cache["10.1.2.3"], DeviceEntry)
    assert reg.entries["fw"].zone.key == "Europe/Berlin"
    assert reg.entries["fw"].clock.zone.key == "Europe/Berlin"
    assert slugs(engine, "pending") == []


def test_ipv4_network_does_not_match_ipv6_senders(engine: Engine) -> None:
    """0.0.0.0/0 is IPv4 only: an IPv6 sender is a new pending device."""
    add_device(engine, "all4", ["0.0.0.0/0"], timezone="Europe/Istanbul")
    reg = registry(engine)
    assert reg.resolve("192.0.2.1", b"x").slug == "all4"
    assert reg.resolve("2001:db8::5", b"x").slug == "ip-2001-db8-5"


@pytest.fixture
def relay(engine: Engine) -> Engine:
    """A relay at 10.5.0.1 forwarding for web1 and web2, plus its own messages."""
    add_device(engine, "web1", ["10.5.0.1"], timezone="Europe/Istanbul", hostname="web1")
    add_device(engine, "web2", ["10.5.0.0/24"], timezone="Europe/Istanbul", hostname="web2")
    add_device(engine, "relay", ["10.5.0.1"], timezone="Europe/Istanbul")
    return engine


@pytest.mark.parametrize(
    ("raw", "device"),
    [
        (rfc3164("web1"), "web1"),
        (rfc5424("web1"), "web1"),
        (rfc3164("web2"), "web2"),
        (rfc5424("WEB2"), "web2"),  # hostnames compare case-insensitively
        (rfc3164("relay-host"), "relay"),  # unknown host: the relay's own device
        (b"<34>Oct 11 22:14:15 su: 'su root' failed", "relay"),  # no hostname
        (b"<13>1 2026-11-28T10:00:00Z - app - - - nil host", "relay"),
        (b"bare message without header", "relay"),
    ],
)
def test_hostname_disambiguates_devices_behind_one_address(
    relay: Engine, raw: bytes, device: str
) -> None:
    """Devices sharing an address are told apart by the syslog hostname, real headers."""
    reg = registry(relay)
    assert reg.resolve("10.5.0.1", raw).slug == device
    assert isinstance(reg.cache["10.5.0.1"], list)
    assert slugs(relay, "pending") == []


def test_unknown_host_behind_a_relay_without_fallback_becomes_one_pending_device(
    engine: Engine,
) -> None:
    """No hostless candidate: an unknown host gets one pending 'host-<name>' device, once."""
    add_device(engine, "web1", ["10.5.0.1"], timezone="Europe/Istanbul", hostname="web1")
    reg = registry(engine)
    first = reg.resolve("10.5.0.1", rfc3164("Web9.Example"))
    assert first.slug == "host-web9.example"
    assert first.status == "pending"
    assert first.hostname == "Web9.Example"
    for _ in range(5):
        assert reg.resolve("10.5.0.1", rfc3164("web9.example")) is first
    assert reg.resolve("10.5.0.1", rfc3164("web1")).slug == "web1"
    reg.save_pending()  # new pending devices reach the database in batches
    assert slugs(engine, "pending") == ["host-web9.example"]
    [dev] = list_devices(engine, "pending")
    assert [s.cidr for s in dev.sources] == ["10.5.0.1/32"]
    # After a reload the same host still resolves to it, and nothing new is created.
    reg.refresh()
    assert reg.resolve("10.5.0.1", rfc3164("web9.example")).slug == "host-web9.example"
    assert slugs(engine, "pending") == ["host-web9.example"]


def test_hostless_message_behind_a_relay_without_fallback_becomes_one_pending_device(
    engine: Engine,
) -> None:
    """No hostname and no hostless candidate: one pending 'ip-<addr>' device, once."""
    add_device(engine, "web1", ["10.5.0.1"], timezone="Europe/Istanbul", hostname="web1")
    reg = registry(engine)
    first = reg.resolve("10.5.0.1", b"no header at all")
    assert first.slug == "ip-10.5.0.1"
    for _ in range(5):
        assert reg.resolve("10.5.0.1", b"still no header") is first
    reg.save_pending()  # new pending devices reach the database in batches
    assert slugs(engine, "pending") == ["ip-10.5.0.1"]


def test_unknown_sender_becomes_one_pending_device(engine: Engine) -> None:
    """An unknown address is created once as pending 'ip-<addr>' in the default timezone."""
    reg = registry(engine)
    entry = reg.resolve("192.0.2.7", rfc3164("x"))
    assert entry.slug == "ip-192.0.2.7"
    assert (entry.status, entry.zone.key, entry.hostname) == ("pending", "Europe/Istanbul", None)
    for _ in range(3):
        assert reg.resolve("192.0.2.7", rfc3164("y")) is entry
    reg.save_pending()  # new pending devices reach the database in batches
    [dev] = list_devices(engine)
    assert (dev.slug, dev.status, dev.timezone) == ("ip-192.0.2.7", "pending", "Europe/Istanbul")
    assert [s.cidr for s in dev.sources] == ["192.0.2.7/32"]
    # A restarted collector finds it again instead of creating ip-192.0.2.7-2.
    reg2 = registry(engine)
    assert reg2.resolve("192.0.2.7", b"x").slug == "ip-192.0.2.7"
    assert slugs(engine) == ["ip-192.0.2.7"]


def test_ipv6_sender_slug(engine: Engine) -> None:
    """IPv6 colons become dashes in the slug; colliding slugs get a numeric suffix."""
    reg = registry(engine)
    a = reg.resolve("2001:db8::1", b"x")
    b = reg.resolve("2001:db8:1::", b"x")  # slugs to the same text
    assert a.slug == "ip-2001-db8-1"
    assert b.slug == "ip-2001-db8-1-2"
    assert reg.resolve("::1", b"x").slug == "ip-1"
    reg.save_pending()
    cidrs = {d.slug: [s.cidr for s in d.sources] for d in list_devices(engine)}
    assert cidrs["ip-2001-db8-1"] == ["2001:db8::1/128"]
    assert cidrs["ip-2001-db8-1-2"] == ["2001:db8:1::/128"]


def test_slug_for() -> None:
    """slug_for makes folder-safe slugs from addresses and hostnames."""
    assert slug_for("10.0.0.1") == "10.0.0.1"
    assert slug_for("fe80::1%eth0") == "fe80-1-eth0"
    assert slug_for("Web_9.Example.COM") == "web_9.example.com"
    assert slug_for("../../etc") == "etc"
    assert slug_for("::") == "device"
    assert len(slug_for("h" * 200)) == 56


def test_max_pending_cap_routes_new_senders_to_unregistered(engine: Engine) -> None:
    """Past max_pending unknown senders share the pending device 'unregistered'."""
    reg = registry(engine, max_pending=2)
    assert reg.resolve("192.0.2.1", b"x").slug == "ip-192.0.2.1"
    assert reg.resolve("192.0.2.2", b"x").slug == "ip-192.0.2.2"
    third = reg.resolve("192.0.2.3", b"x")
    assert third.slug == UNREGISTERED
    assert reg.resolve("192.0.2.4", b"x") is third
    assert reg.resolve("2001:db8::9", b"x") is third
    reg.save_pending()  # new pending devices reach the database in batches
    assert slugs(engine) == ["ip-192.0.2.1", "ip-192.0.2.2", UNREGISTERED]
    [unreg] = list_devices(engine, "pending")[2:]
    assert (unreg.slug, unreg.sources) == (UNREGISTERED, [])
    # Known senders are not affected by the cap.
    assert reg.resolve("192.0.2.1", b"x").slug == "ip-192.0.2.1"


def test_max_pending_zero_sends_every_unknown_sender_to_unregistered(engine: Engine) -> None:
    """max_pending_devices = 0: no per-sender pending devices at all."""
    add_device(engine, "gw1", ["10.0.0.1"], timezone="Europe/Istanbul")
    reg = registry(engine, max_pending=0)
    assert reg.resolve("10.0.0.1", b"x").slug == "gw1"
    assert reg.resolve("192.0.2.1", b"x").slug == UNREGISTERED
    reg.save_pending()  # new pending devices reach the database in batches
    assert slugs(engine) == ["gw1", UNREGISTERED]


def test_unregistered_lines_counts_every_line(engine: Engine, tmp_path: Path) -> None:
    """The unregistered counter counts lines archived under 'unregistered', not senders."""
    reg = registry(engine, max_pending=0)
    writer = ArchiveWriter(tmp_path / "archive", fsync="never")
    ingest = Ingest(reg, writer)
    now = dt.datetime(2026, 11, 28, 9, tzinfo=dt.UTC).timestamp()
    ns = int(now * 1e9)
    batch = [(ns + i, f"192.0.2.{i % 3}", b"<13>hello %d" % i, b"") for i in range(12)]
    ingest.archive(batch)
    assert writer.flush()
    writer.close()
    assert reg.stats[UNREGISTERED].received == 12
    assert reg.unregistered_lines == 12


def test_refresh_picks_up_status_changes(engine: Engine) -> None:
    """set_status through the database is seen by refresh(); no change means no reload."""
    add_device(engine, "gw1", ["10.0.0.1"], timezone="Europe/Istanbul")
    reg = registry(engine)
    entry = reg.resolve("10.0.0.1", b"x")
    assert entry.status == "approved"
    assert reg.refresh() is False
    set_status(engine, "gw1", "rejected")
    assert reg.refresh() is True
    assert reg.cache == {}
    again = reg.resolve("10.0.0.1", b"x")
    assert again.status == "rejected"
    assert again is entry  # the same entry (and its stats) is kept across reloads
    assert reg.refresh() is False
    set_status(engine, "gw1", "approved")
    assert reg.refresh() is True
    assert reg.resolve("10.0.0.1", b"x").status == "approved"


def test_refresh_picks_up_new_devices(engine: Engine) -> None:
    """A device added after start takes over its address from then on."""
    reg = registry(engine)
    assert reg.resolve("10.0.0.9", b"x").slug == "ip-10.0.0.9"
    add_device(engine, "net", ["10.0.0.0/24"], timezone="Europe/Istanbul")
    assert reg.refresh() is True
    # The pending device of the exact address is more specific than the new network.
    assert reg.resolve("10.0.0.9", b"x").slug == "ip-10.0.0.9"
    assert reg.resolve("10.0.0.10", b"x").slug == "net"
    assert reg.refresh() is False


def test_approving_a_pending_device_keeps_it(engine: Engine) -> None:
    """A pending device approved by the operator resolves as approved after refresh."""
    reg = registry(engine)
    reg.resolve("192.0.2.50", b"x")
    reg.refresh()  # stores the new pending device (within 2 s in a running collector)
    set_status(engine, "ip-192.0.2.50", "approved")
    reg.refresh()
    entry = reg.resolve("192.0.2.50", b"x")
    assert (entry.slug, entry.status) == ("ip-192.0.2.50", "approved")
    assert slugs(engine, "approved") == ["ip-192.0.2.50"]


def test_mark_seen_does_not_trigger_a_reload(engine: Engine) -> None:
    """last_seen_at is stored without changing the registry fingerprint."""
    add_device(engine, "gw1", ["10.0.0.1"], timezone="Europe/Istanbul")
    reg = registry(engine)
    reg.resolve("10.0.0.1", b"x").seen = True
    reg.mark_seen()
    assert reg.entries["gw1"].seen is False
    [dev] = list_devices(engine)
    assert dev.last_seen_at is not None
    assert reg.refresh() is False
    reg.mark_seen()  # nothing seen since: no-op
