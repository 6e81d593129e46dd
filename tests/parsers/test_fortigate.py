"""FortiGate parser: FortiOS key=value traffic, event and UTM logs, header and parser together."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_lines import fields_of, ist, mutated_syslog, offset

from logmaster.parsers import read_syslog
from logmaster.parsers.base import Syslog
from logmaster.parsers.fortigate import FortiGateParser

ISTANBUL = ZoneInfo("Europe/Istanbul")
RECEIVED = dt.datetime(2024, 7, 23, 12, 0, tzinfo=ISTANBUL)
LINES = (Path(__file__).parent / "samples" / "fortigate.txt").read_text().splitlines()
PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def event_fields(line: str) -> dict[str, Any]:
    """What parse() makes of ``line`` received at RECEIVED (see sample_lines.fields_of)."""
    return fields_of(line, RECEIVED)


# The expected event of each line of samples/fortigate.txt, in file order.
EXPECTED: list[dict[str, Any]] = [
    # 1: date=2018-12-27 time=11:07:55 logid="0000000013" type="traffic" subtype="forward" level=
    {
        "@timestamp": offset(0, 2018, 12, 27, 19, 7, 55),
        "destination.bytes": 146668,
        "destination.ip": "52.53.140.235",
        "destination.packets": 105,
        "destination.port": 443,
        "event.action": "close",
        "event.code": "0000000013",
        "event.dataset": "fortigate.traffic",
        "event.duration": 2000000000,
        "event.end": offset(0, 2018, 12, 27, 19, 7, 55),
        "event.start": offset(0, 2018, 12, 27, 19, 7, 53),
        "fortigate.session_id": 402,
        "fortigate.subtype": "forward",
        "fortigate.trandisp": "snat",
        "fortigate.vd": "vdom1",
        "log.level": "notice",
        "network.application": "https.browser",
        "network.bytes": 150320,
        "network.iana_number": "6",
        "network.packets": 163,
        "network.protocol": "https",
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "port11",
        "observer.ingress.interface.name": "port12",
        "observer.product": "FortiGate",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "rule.id": "1",
        "rule.uuid": "c2d460aa-fe6f-51e8-9505-41b5117dfdd4",
        "source.bytes": 3652,
        "source.ip": "10.1.100.11",
        "source.nat.ip": "172.16.200.1",
        "source.nat.port": 54190,
        "source.packets": 58,
        "source.port": 54190,
    },
    # 2: <189>date=2020-04-23 time=12:11:51 devname="FGT60E-office" devid="FGT60E4Q16000000" logi
    {
        "@timestamp": offset(-5, 2020, 4, 23, 12, 11, 51, 390385),
        "destination.bytes": 65446,
        "destination.ip": "67.43.156.13",
        "destination.packets": 1045601,
        "destination.port": 6000,
        "event.action": "accept",
        "event.code": "0000000020",
        "event.dataset": "fortigate.traffic",
        "event.duration": 5462000000000,
        "event.end": offset(-5, 2020, 4, 23, 12, 11, 51, 390385),
        "event.start": offset(-5, 2020, 4, 23, 10, 40, 49, 390385),
        "fortigate.session_id": 4352,
        "fortigate.subtype": "forward",
        "fortigate.trandisp": "snat",
        "fortigate.vd": "root",
        "log.level": "notice",
        "network.bytes": 504096,
        "network.iana_number": "17",
        "network.packets": 1769018,
        "network.protocol": "portname",
        "network.transport": "udp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "wan1",
        "observer.ingress.interface.name": "port1",
        "observer.name": "FGT60E-office",
        "observer.product": "FortiGate",
        "observer.serial_number": "FGT60E4Q16000000",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "rule.id": "3426",
        "rule.name": "newruleelastic",
        "rule.uuid": "1765de8-5a13-765da73fdsfa1c",
        "source.bytes": 438650,
        "source.ip": "192.168.10.10",
        "source.nat.ip": "67.43.156.14",
        "source.nat.port": 60964,
        "source.packets": 723417,
        "source.port": 6000,
    },
    # 3: <189>date=2024-07-22 time=10:15:30 devname="FGT-HQ" devid="FG100FTK20000001" eventtime=1
    {
        "@timestamp": offset(3, 2024, 7, 22, 10, 15, 30, 123000),
        "destination.bytes": 81920,
        "destination.ip": "198.51.100.10",
        "destination.nat.ip": "192.168.1.10",
        "destination.nat.port": 8443,
        "destination.packets": 70,
        "destination.port": 443,
        "event.action": "close",
        "event.code": "0000000013",
        "event.dataset": "fortigate.traffic",
        "event.duration": 35000000000,
        "event.end": offset(3, 2024, 7, 22, 10, 15, 30, 123000),
        "event.start": offset(3, 2024, 7, 22, 10, 14, 55, 123000),
        "fortigate.session_id": 88123,
        "fortigate.subtype": "forward",
        "fortigate.trandisp": "dnat",
        "fortigate.vd": "root",
        "log.level": "notice",
        "network.bytes": 87040,
        "network.iana_number": "6",
        "network.packets": 110,
        "network.protocol": "https",
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "internal",
        "observer.ingress.interface.name": "wan1",
        "observer.name": "FGT-HQ",
        "observer.product": "FortiGate",
        "observer.serial_number": "FG100FTK20000001",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "rule.id": "12",
        "rule.name": "VIP-web",
        "rule.uuid": "7b4a1f2e-1111-51ea-2222-333333333333",
        "source.bytes": 5120,
        "source.ip": "203.0.113.50",
        "source.packets": 40,
        "source.port": 51515,
    },
    # 4: <189>date=2024-07-22 time=10:20:01 devname="FGT-HQ" devid="FG100FTK20000001" eventtime=1
    {
        "@timestamp": offset(3, 2024, 7, 22, 10, 20, 1, 654321),
        "destination.bytes": 200,
        "destination.ip": "198.51.100.10",
        "destination.nat.ip": "192.168.1.10",
        "destination.nat.port": 8443,
        "destination.packets": 3,
        "destination.port": 443,
        "event.action": "timeout",
        "event.code": "0000000013",
        "event.dataset": "fortigate.traffic",
        "event.duration": 120000000000,
        "event.end": offset(3, 2024, 7, 22, 10, 20, 1, 654321),
        "event.start": offset(3, 2024, 7, 22, 10, 18, 1, 654321),
        "fortigate.session_id": 88200,
        "fortigate.subtype": "forward",
        "fortigate.trandisp": "snat+dnat",
        "fortigate.vd": "root",
        "log.level": "notice",
        "network.bytes": 300,
        "network.iana_number": "6",
        "network.packets": 5,
        "network.protocol": "https",
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "internal",
        "observer.ingress.interface.name": "internal",
        "observer.name": "FGT-HQ",
        "observer.product": "FortiGate",
        "observer.serial_number": "FG100FTK20000001",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "rule.id": "13",
        "source.bytes": 100,
        "source.ip": "192.168.1.20",
        "source.nat.ip": "192.168.1.99",
        "source.nat.port": 40000,
        "source.packets": 2,
        "source.port": 40000,
    },
    # 5: <188>1 2023-11-02T09:30:12+03:00 FGT-BRANCH - - - - logver=704022240 timestamp=169890661
    {
        "@timestamp": offset(3, 2023, 11, 2, 9, 30, 12, 418204),
        "destination.bytes": 0,
        "destination.ip": "93.184.216.34",
        "destination.port": 80,
        "event.action": "deny",
        "event.code": "0000000013",
        "event.dataset": "fortigate.traffic",
        "event.duration": 0,
        "event.end": offset(3, 2023, 11, 2, 9, 30, 12, 418204),
        "event.start": offset(3, 2023, 11, 2, 9, 30, 12, 418204),
        "fortigate.session_id": 7711,
        "fortigate.subtype": "forward",
        "fortigate.trandisp": "noop",
        "fortigate.vd": "root",
        "host.name": "FGT-BRANCH",
        "log.level": "notice",
        "network.bytes": 0,
        "network.iana_number": "6",
        "network.protocol": "http",
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "wan1",
        "observer.ingress.interface.name": "lan",
        "observer.name": "FGT-BRANCH",
        "observer.product": "FortiGate",
        "observer.serial_number": "FGT40FTK21000002",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "rule.id": "0",
        "source.bytes": 0,
        "source.ip": "10.20.30.40",
        "source.mac": "a4:83:e7:12:34:56",
        "source.packets": 0,
        "source.port": 55123,
        "user.name": "ayse.yilmaz",
    },
    # 6: <189>date=2023-11-02 time=09:31:40 devname="FGT-BRANCH" devid="FGT40FTK21000002" logid="
    {
        "@timestamp": offset(3, 2023, 11, 2, 9, 31, 40, 52907),
        "destination.bytes": 0,
        "destination.ip": "104.18.1.1",
        "destination.port": 443,
        "event.action": "blocked",
        "event.code": "0316013056",
        "event.dataset": "fortigate.utm",
        "fortigate.msg": "URL belongs to a denied category in policy",
        "fortigate.session_id": 7790,
        "fortigate.subtype": "webfilter",
        "fortigate.vd": "root",
        "log.level": "warning",
        "network.bytes": 517,
        "network.direction": "outbound",
        "network.iana_number": "6",
        "network.protocol": "https",
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "wan1",
        "observer.ingress.interface.name": "lan",
        "observer.name": "FGT-BRANCH",
        "observer.product": "FortiGate",
        "observer.serial_number": "FGT40FTK21000002",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "rule.id": "5",
        "source.bytes": 517,
        "source.ip": "10.20.30.40",
        "source.port": 55200,
        "url.domain": "gambling.example.com",
        "user.name": "ayse.yilmaz",
    },
    # 7: <189>date=2023-11-02 time=09:12:03 devname="FGT-BRANCH" devid="FGT40FTK21000002" logid="
    {
        "@timestamp": offset(3, 2023, 11, 2, 9, 12, 3, 109462),
        "event.action": "login",
        "event.code": "0102043039",
        "event.dataset": "fortigate.event",
        "event.outcome": "success",
        "fortigate.logdesc": "Authentication logon",
        "fortigate.msg": "User mehmet added to auth logon",
        "fortigate.subtype": "user",
        "fortigate.vd": "root",
        "log.level": "notice",
        "network.type": "ipv4",
        "observer.name": "FGT-BRANCH",
        "observer.product": "FortiGate",
        "observer.serial_number": "FGT40FTK21000002",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "source.ip": "10.20.30.41",
        "user.name": "mehmet",
    },
    # 8: <189>date=2023-11-02 time=09:45:00 devname="FGT-BRANCH" devid="FGT40FTK21000002" logid="
    {
        "@timestamp": offset(3, 2023, 11, 2, 9, 45),
        "event.action": "logout",
        "event.code": "0102043040",
        "event.dataset": "fortigate.event",
        "event.outcome": "success",
        "fortigate.logdesc": "Authentication logout",
        "fortigate.msg": "User mehmet removed from auth logon",
        "fortigate.subtype": "user",
        "fortigate.vd": "root",
        "log.level": "notice",
        "network.type": "ipv4",
        "observer.name": "FGT-BRANCH",
        "observer.product": "FortiGate",
        "observer.serial_number": "FGT40FTK21000002",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "source.ip": "10.20.30.41",
        "user.name": "mehmet",
    },
    # 9: <190>date=2023-11-02 time=09:12:00 devname="FGT-BRANCH" devid="FGT40FTK21000002" logid="
    {
        "@timestamp": offset(3, 2023, 11, 2, 9, 12),
        "destination.ip": "10.20.30.1",
        "event.action": "login-failed",
        "event.code": "0102043009",
        "event.dataset": "fortigate.event",
        "event.outcome": "failure",
        "fortigate.logdesc": "Authentication failed",
        "fortigate.msg": "User guest1 failed in authentication",
        "fortigate.subtype": "user",
        "fortigate.vd": "root",
        "log.level": "notice",
        "network.type": "ipv4",
        "observer.name": "FGT-BRANCH",
        "observer.product": "FortiGate",
        "observer.serial_number": "FGT40FTK21000002",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "rule.id": "7",
        "source.ip": "10.20.30.42",
        "user.name": "guest1",
    },
    # 10: <189>date=2024-02-01 time=08:00:05 devname="FGT-HQ" devid="FG100FTK20000001" logid="0100
    {
        "@timestamp": offset(3, 2024, 2, 1, 8, 0, 5),
        "destination.ip": "10.0.0.1",
        "event.action": "admin-login",
        "event.code": "0100032001",
        "event.dataset": "fortigate.event",
        "event.outcome": "success",
        "fortigate.logdesc": "Admin login successful",
        "fortigate.msg": "Administrator admin logged in successfully from https(10.0.0.2)",
        "fortigate.subtype": "system",
        "fortigate.vd": "root",
        "log.level": "information",
        "network.type": "ipv4",
        "observer.name": "FGT-HQ",
        "observer.product": "FortiGate",
        "observer.serial_number": "FG100FTK20000001",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "source.ip": "10.0.0.2",
        "user.name": "admin",
    },
    # 11: <190>date=2020-04-23 time=12:23:47 devname="FGT-HQ" devid="FG100FTK20000001" logid="0101
    {
        "@timestamp": offset(-5, 2020, 4, 23, 12, 23, 47, 698970),
        "event.action": "tunnel-up",
        "event.code": "0101039947",
        "event.dataset": "fortigate.event",
        "event.reason": "tunnel established",
        "fortigate.logdesc": "SSL VPN tunnel up",
        "fortigate.msg": "SSL tunnel established",
        "fortigate.subtype": "vpn",
        "fortigate.tunnelip": "10.212.134.200",
        "fortigate.vd": "root",
        "log.level": "information",
        "network.type": "ipv4",
        "observer.name": "FGT-HQ",
        "observer.product": "FortiGate",
        "observer.serial_number": "FG100FTK20000001",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "source.ip": "67.43.156.13",
        "user.name": "someuser",
    },
    # 12: date=2019-05-15,time=09:05:12,devname="FG100E",devid="FG100E4Q17000001",logid="000000001
    {
        "@timestamp": offset(0, 2019, 5, 15, 6, 5, 12),
        "destination.bytes": 90,
        "destination.ip": "8.8.4.4",
        "destination.packets": 1,
        "destination.port": 53,
        "event.action": "accept",
        "event.code": "0000000013",
        "event.dataset": "fortigate.traffic",
        "event.duration": 180000000000,
        "event.end": offset(0, 2019, 5, 15, 6, 5, 12),
        "event.start": offset(0, 2019, 5, 15, 6, 2, 12),
        "fortigate.session_id": 1001,
        "fortigate.subtype": "forward",
        "fortigate.trandisp": "snat",
        "fortigate.vd": "root",
        "log.level": "notice",
        "network.bytes": 164,
        "network.iana_number": "17",
        "network.packets": 2,
        "network.protocol": "dns",
        "network.transport": "udp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "wan1",
        "observer.ingress.interface.name": "port2",
        "observer.name": "FG100E",
        "observer.product": "FortiGate",
        "observer.serial_number": "FG100E4Q17000001",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "rule.id": "2",
        "source.bytes": 74,
        "source.ip": "192.168.1.7",
        "source.nat.ip": "203.0.113.9",
        "source.nat.port": 61000,
        "source.packets": 1,
        "source.port": 50001,
    },
    # 13: <189>Jul 22 10:25:45 FGT-OLD date=2024-07-22 time=10:25:45 devname="FGT-OLD" devid="FGT8
    {
        "@timestamp": ist(2024, 7, 22, 10, 25, 45),
        "destination.bytes": 2000,
        "destination.ip": "1.1.1.1",
        "destination.packets": 12,
        "destination.port": 853,
        "event.action": "close",
        "event.code": "0000000013",
        "event.dataset": "fortigate.traffic",
        "event.duration": 10000000000,
        "event.end": ist(2024, 7, 22, 10, 25, 45),
        "event.start": ist(2024, 7, 22, 10, 25, 35),
        "fortigate.session_id": 99,
        "fortigate.subtype": "forward",
        "fortigate.trandisp": "snat",
        "fortigate.vd": "root",
        "host.name": "FGT-OLD",
        "log.level": "notice",
        "network.bytes": 3000,
        "network.iana_number": "6",
        "network.packets": 22,
        "network.protocol": "dot",
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "wan1",
        "observer.ingress.interface.name": "internal",
        "observer.name": "FGT-OLD",
        "observer.product": "FortiGate",
        "observer.serial_number": "FGT80C3911000003",
        "observer.type": "firewall",
        "observer.vendor": "Fortinet",
        "rule.id": "3",
        "source.bytes": 1000,
        "source.ip": "172.16.5.5",
        "source.nat.ip": "198.51.100.77",
        "source.nat.port": 33333,
        "source.packets": 10,
        "source.port": 33333,
    },
]

# Lines of other formats that this parser must leave to their own parsers: key=value lines
# without FortiGate's markers among them.
FOREIGN = [
    'time="2024-07-22 10:00:00" user=bob action=login src=10.0.0.5 logid=42 type=auth',
    'device="SFW" date=2017-01-31 time=18:18:00 timezone="IST" device_name="XG125w" '
    'device_id=C44313350024-P29PUA log_id=010101600001 log_type="Firewall" status="Allow" '
    "src_ip=10.0.0.5 dst_ip=8.8.8.8",
    'date=2024-07-22 time=10:00:00 logid="0000000013" srcip=10.0.0.1 dstip=8.8.8.8',
    "CEF:0|Fortinet|Fortigate|v6.0.3|00013|traffic:forward close|3|"
    "deviceExternalId=FGT5HD3915800610 FTNTFGTlogid=0000000013 cat=traffic:forward "
    "FTNTFGTsubtype=forward src=10.1.100.11 dst=52.53.140.235",
    "Apr 29 2013 12:59:50: %ASA-6-302013: Built outbound TCP connection 89743277 for "
    "outside:192.168.0.17/80 (192.168.0.17/80) to inside:192.168.3.42/4954 (10.0.0.130/10879)",
    "<161>Oct 10 07:25:12 Hostname kernel: [wan-lan-default-D]IN=eth0 OUT= "
    "MAC=90:10:20:76:8d:20:90:10:65:29:b6:2a:08:00 SRC=67.43.156.15 DST=10.4.0.5 LEN=52 "
    "TOS=0x00 PREC=0x00 TTL=63 ID=0 DF PROTO=TCP SPT=38842 DPT=443 WINDOW=2853 RES=0x00 ACK URGP=0",
    "<190>Jul  4 09:39:41 dhcpd[64305]: DHCPACK on 10.150.60.56 to 4c:55:41:a0:fa:99 "
    "(computer-name) via eth0.60",
    "firewall,info forward: in:ether5-LAN out:ether1, src-mac 00:19:e7:90:d4:45, proto TCP "
    "(SYN), 10.0.10.76:61127->40.127.110.237:443, len 52",
    "<134>Jul  3 19:10:30 filterlog[72237]: 176,,,1520797901,igb1.27,match,pass,in,4,0xb8,,64,"
    "58355,0,none,17,udp,76,10.170.27.27,216.229.4.66,123,123,56",
    "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for "
    "lonvick on /dev/pts/8",
    "",
]


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ('tz="+0300"', offset(3, 2024, 7, 22, 10)),
        ('tz="-05:00"', offset(-5, 2024, 7, 22, 10)),
        ('tz="UTC+3:00"', offset(3, 2024, 7, 22, 10)),
        ('tz="GMT-3:30"', offset(-3.5, 2024, 7, 22, 10)),
        ("", ist(2024, 7, 22, 10)),
    ],
)
def test_local_time_and_zone_forms(tz: str, expected: dt.datetime) -> None:
    """date/time are read in the tz= offset, in any of its spellings, else the device zone."""
    line = (
        f'<189>Jul 22 10:00:00 fw date=2024-07-22 time=10:00:00 logid="0100032001" {tz} type=event'
    )
    assert event_fields(line)["@timestamp"] == expected


@pytest.mark.parametrize(
    "eventtime",
    ["1721631600", "1721631600000", "1721631600000000", "1721631600000000000"],
)
def test_eventtime_units(eventtime: str) -> None:
    """eventtime in seconds, ms, us or ns gives the same instant."""
    line = f'logid="0100032001" type="event" eventtime={eventtime}'
    assert event_fields(line)["@timestamp"] == offset(0, 2024, 7, 22, 7)


def test_samples_all_have_expectations() -> None:
    """Every line of samples/fortigate.txt has exactly one expected event below."""
    assert len(LINES) == len(EXPECTED)


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(LINES, EXPECTED, strict=True)),
    ids=[f"line{n}" for n in range(1, len(LINES) + 1)],
)
def test_sample_fields(line: str, expected: dict[str, Any]) -> None:
    """Each sample line yields exactly the expected fields (header and parser together)."""
    assert event_fields(line) == expected


@pytest.mark.parametrize("line", FOREIGN)
def test_foreign_lines_not_claimed(line: str) -> None:
    """Lines of other vendors and formats are not claimed by the FortiGate parser."""
    assert FortiGateParser().parse(read_syslog(line, ISTANBUL, RECEIVED)) is None


MESSAGES = [read_syslog(line, ISTANBUL, RECEIVED) for line in LINES]


@PROPERTY
@given(
    st.one_of(
        mutated_syslog(MESSAGES),
        st.builds(
            Syslog,
            message=st.text(max_size=300),
            appname=st.one_of(st.none(), st.sampled_from(["date", "FGT-HQ"]), st.text(max_size=12)),
            hostname=st.one_of(st.none(), st.text(max_size=12)),
            format=st.sampled_from(["bare", "rfc3164", "rfc5424"]),
        ),
    )
)
def test_property_never_raises(syslog: Syslog) -> None:
    """Arbitrary text and mutated samples never make the parser raise or emit empty values."""
    fields = FortiGateParser().parse(syslog)
    if fields is not None:
        assert fields["event.dataset"].startswith("fortigate")
        assert all(v is not None and v != "" for v in fields.values())
