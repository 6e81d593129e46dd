"""Attribution over a generated day of hotspot traffic where every answer is known.

Two sites share the private range 192.168.88.0/24 (as MikroTik's defaults make them do):
site A has a MikroTik gateway (NAT + hotspot) and an ISC dhcpd server, site B a MikroTik doing
all three. Clients come and go, an address is handed to a second client the same day, a public
port is reused by another client later, and one client holds two connections at once. Lines go
through the real archive writer and the real indexer; answers are checked hop by hop.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from logmaster.archive.line import Clock, format_line
from logmaster.archive.writer import ArchiveWriter
from logmaster.collector.devices import add_device
from logmaster.compliance.attribution import Attribution, attribute
from logmaster.db import make_engine, migrate
from logmaster.index.indexer import Indexer
from logmaster.index.sqlite import SqliteIndex

ZONE = ZoneInfo("Europe/Istanbul")
DAY = dt.date(2026, 11, 20)
MAC1, MAC2, MAC3 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
PUB_A, PUB_B = "203.0.113.10", "198.51.100.20"
LAN_IP = "192.168.88.10"


def at(hhmmss: str) -> dt.datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return dt.datetime(DAY.year, DAY.month, DAY.day, h, m, s, tzinfo=ZONE)


def bsd(t: dt.datetime) -> str:
    return (
        t.strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
        if t.day < 10
        else t.strftime("%b %d %H:%M:%S")
    )


def nat(host: str, t: str, mac: str, inner: str, public: str, dst: str = "93.184.216.34:443"):
    return (
        host,
        at(t),
        f"<134>{bsd(at(t))} {host} firewall,info forward: in:bridge "
        f"out:ether1, connection-state:new src-mac {mac}, proto TCP (SYN), {inner}->{dst}, "
        f"NAT ({inner}->{public})->{dst}, len 60",
    )


def mt(host: str, t: str, text: str):
    return (host, at(t), f"<134>{bsd(at(t))} {host} {text}")


def dhcpd(t: str, text: str):
    return ("dhcp-a", at(t), f"<190>{bsd(at(t))} dhcp-a dhcpd[812]: {text}")


TRAFFIC = [
    # site A: ayse (MAC1) gets .10 from dhcpd, signs in, browses, leaves
    dhcpd("08:00:00", f"DHCPACK on {LAN_IP} to {MAC1} (ayse-phone) via eth0"),
    mt("gw-a", "08:01:00", f"hotspot,account,info,debug ayse ({LAN_IP}): logged in"),
    nat("gw-a", "10:00:00", MAC1, f"{LAN_IP}:50000", f"{PUB_A}:40000"),
    nat("gw-a", "10:00:05", MAC1, f"{LAN_IP}:50002", f"{PUB_A}:40001"),
    dhcpd("12:00:00", f"DHCPACK on {LAN_IP} to {MAC1} (ayse-phone) via eth0"),
    mt("gw-a", "13:59:00", f"hotspot,account,info,debug ayse ({LAN_IP}): logged out: user request"),
    dhcpd("14:00:00", f"DHCPRELEASE of {LAN_IP} from {MAC1} (ayse-phone) via eth0 (found)"),
    # site A: mehmet (MAC2) gets the same address later; the public port 40000 is reused
    dhcpd("15:00:00", f"DHCPACK on {LAN_IP} to {MAC2} (mehmet-pc) via eth0"),
    mt("gw-a", "15:01:00", f"hotspot,account,info,debug mehmet ({LAN_IP}): logged in"),
    nat("gw-a", "16:00:00", MAC2, f"{LAN_IP}:50001", f"{PUB_A}:40000"),
    # site B: zeynep (MAC3) has the same private address at the same time as ayse
    mt("gw-b", "09:00:00", f"dhcp,info dhcp1 assigned {LAN_IP} for {MAC3.upper()} zeynep-tab"),
    mt("gw-b", "09:01:00", f"hotspot,account,info,debug zeynep ({LAN_IP}): logged in"),
    nat("gw-b", "10:00:00", MAC3, f"{LAN_IP}:50000", f"{PUB_B}:40000"),
    mt(
        "gw-b",
        "16:59:00",
        f"hotspot,account,info,debug zeynep ({LAN_IP}): logged out: keepalive timeout",
    ),
    mt("gw-b", "17:00:00", f"dhcp,info dhcp1 deassigned {LAN_IP} for {MAC3.upper()}"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteIndex, Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("attribution")
    url = f"sqlite:///{root / 'meta.db'}"
    migrate(url)
    engine = make_engine(url)
    locations = {"gw-a": "A", "dhcp-a": "A", "gw-b": "B"}
    for n, (slug, loc) in enumerate(locations.items()):
        add_device(engine, slug, [f"10.9.9.{n + 1}"], location=loc, timezone=ZONE.key)
    writer = ArchiveWriter(root / "archive", "never")
    clock = Clock(ZONE)
    for host, when, raw in sorted(TRAFFIC, key=lambda t: t[1]):
        stamp = clock.stamp(int(when.timestamp()))
        df = writer.day_file(host, stamp.day)
        writer.add(df, format_line(stamp, 0, b"10.9.9.1", raw.encode()))
    writer.close()
    index = SqliteIndex(root / "index")
    indexer = Indexer(root / "archive", index, engine)
    assert indexer.catch_up() == len(TRAFFIC)
    return index, root / "archive", locations


def ask(world: tuple[SqliteIndex, Path, dict[str, str]], **kw: object) -> Attribution:
    index, archive, locations = world
    return attribute(index, archive, locations=locations, window=5, **kw)  # type: ignore[arg-type]


def test_public_ip_and_port_lead_to_the_user(world) -> None:
    """NAT on gw-a -> lease from dhcpd at the same site -> hotspot login: ayse, MAC1."""
    r = ask(world, ip=PUB_A, port=40000, at=at("10:00:30"))
    assert len(r.chains) == 1 and not r.ambiguous and not r.missing
    chain = r.chains[0]
    assert (chain.internal_ip, chain.internal_port) == (LAN_IP, 50000)
    assert chain.nat is not None and chain.nat.session.device == "gw-a"
    assert chain.macs == [MAC1] and chain.users == ["ayse"]
    assert [h.session.device for h in chain.leases] == ["dhcp-a"]
    cited = chain.nat.evidence[0]
    assert cited.file == "gw-a/2026/11/20.log" and "NAT (192.168.88.10:50000->" in cited.line


def test_reused_public_port_later_belongs_to_the_second_client(world) -> None:
    """The same public port at 16:01 is mehmet's connection, on the reassigned address."""
    r = ask(world, ip=PUB_A, port=40000, at=at("16:01:00"))
    assert [c.internal_port for c in r.chains] == [50001]
    assert r.chains[0].macs == [MAC2] and r.chains[0].users == ["mehmet"]


def test_other_site_with_same_private_range_is_kept_apart(world) -> None:
    """Site B's NAT leads to zeynep, never to site A's client on the same private address."""
    r = ask(world, ip=PUB_B, port=40000, at=at("10:02:00"))
    assert len(r.chains) == 1
    assert r.chains[0].macs == [MAC3] and r.chains[0].users == ["zeynep"]


def test_without_port_every_connection_is_listed(world) -> None:
    """Two connections of one client at once: both NAT candidates shown, same user."""
    r = ask(world, ip=PUB_A, at=at("10:00:30"))
    assert sorted(c.internal_port or 0 for c in r.chains) == [50000, 50002]
    assert r.ambiguous
    assert all(c.users == ["ayse"] for c in r.chains)


def test_no_nat_log_says_what_is_missing(world) -> None:
    """Long after the translation timed out there is no NAT evidence, and the answer says so."""
    r = ask(world, ip=PUB_A, port=40000, at=at("12:30:00"))
    assert r.chains == []
    assert any("no NAT log" in m and "srcnat" in m for m in r.missing)


def test_internal_ip_shows_both_sites_as_ambiguous(world) -> None:
    """A private address alone matches leases at both sites: both candidates, flagged."""
    r = ask(world, ip=LAN_IP, at=at("11:00:00"))
    assert len(r.chains) == 1
    assert r.chains[0].macs == [MAC1, MAC3]
    assert r.ambiguous


def test_mac_leads_to_lease_and_login(world) -> None:
    """From a MAC: the lease on dhcp-a, then the login at the same site (not site B's)."""
    r = ask(world, mac=MAC1, at=at("11:00:00"))
    assert [h.session.inner_ip for h in r.chains[0].leases] == [LAN_IP]
    assert r.chains[0].users == ["ayse"]


def test_released_lease_is_not_attributed(world) -> None:
    """After the release at 14:00 and before mehmet's lease, nobody holds the address."""
    r = ask(world, mac=MAC1, at=at("14:30:00"))
    assert r.chains[0].leases == []
