"""MikroTik parser: firewall/NAT, hotspot and DHCP lines, header and parser together."""

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
from logmaster.parsers.mikrotik import MikroTikParser

ISTANBUL = ZoneInfo("Europe/Istanbul")
RECEIVED = dt.datetime(2024, 7, 23, 12, 0, tzinfo=ISTANBUL)
LINES = (Path(__file__).parent / "samples" / "mikrotik.txt").read_text().splitlines()
PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def event_fields(line: str) -> dict[str, Any]:
    """What parse() makes of ``line`` received at RECEIVED (see sample_lines.fields_of)."""
    return fields_of(line, RECEIVED)


# The expected event of each line of samples/mikrotik.txt, in file order.
EXPECTED: list[dict[str, Any]] = [
    # 1: Jul 22 01:37:54 aksaray-hotspot.trasst.com srcnat: in:ZURICH_HOTEL out:sDT_MODEM, connec
    {
        "@timestamp": ist(2024, 7, 22, 1, 37, 54),
        "destination.ip": "16.16.163.191",
        "destination.port": 443,
        "event.dataset": "mikrotik.firewall",
        "host.name": "aksaray-hotspot.trasst.com",
        "mikrotik.chain": "srcnat",
        "mikrotik.connection_state": "new",
        "mikrotik.tcp.flags": ["SYN"],
        "network.bytes": 64,
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "sDT_MODEM",
        "observer.ingress.interface.name": "ZURICH_HOTEL",
        "rule.name": "srcnat",
        "source.ip": "172.67.0.212",
        "source.mac": "0e:26:ad:7f:01:9b",
        "source.port": 60792,
    },
    # 2: firewall,info forward: in:ether5-LAN out:ether1-work-Irancell, src-mac 00:19:e7:90:d4:45
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "destination.ip": "40.127.110.237",
        "destination.port": 443,
        "event.dataset": "mikrotik.firewall",
        "mikrotik.chain": "forward",
        "mikrotik.tcp.flags": ["SYN"],
        "mikrotik.topics": ["firewall", "info"],
        "network.bytes": 52,
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "ether1-work-Irancell",
        "observer.ingress.interface.name": "ether5-LAN",
        "rule.name": "forward",
        "source.ip": "10.0.10.76",
        "source.mac": "00:19:e7:90:d4:45",
        "source.nat.ip": "10.0.100.254",
        "source.nat.port": 61127,
        "source.port": 61127,
    },
    # 3: <134>Jul 22 01:40:00 gw1 firewall,info forward: in:bridge out:ether1, connection-state:e
    {
        "@timestamp": ist(2024, 7, 22, 1, 40),
        "destination.ip": "8.8.8.8",
        "destination.port": 53,
        "event.dataset": "mikrotik.firewall",
        "host.name": "gw1",
        "mikrotik.chain": "forward",
        "mikrotik.connection_state": "established,snat",
        "mikrotik.topics": ["firewall", "info"],
        "network.bytes": 72,
        "network.transport": "udp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "ether1",
        "observer.ingress.interface.name": "bridge",
        "rule.name": "forward",
        "source.ip": "192.168.88.20",
        "source.mac": "00:19:e7:90:d4:45",
        "source.nat.ip": "203.0.113.2",
        "source.nat.port": 5353,
        "source.port": 5353,
    },
    # 4: firewall,info forward: in:ether1 out:bridge, connection-state:new,dnat src-mac 4c:5e:0c:
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "destination.ip": "198.51.100.10",
        "destination.nat.ip": "192.168.88.10",
        "destination.nat.port": 80,
        "destination.port": 8080,
        "event.dataset": "mikrotik.firewall",
        "mikrotik.chain": "forward",
        "mikrotik.connection_state": "new,dnat",
        "mikrotik.tcp.flags": ["SYN"],
        "mikrotik.topics": ["firewall", "info"],
        "network.bytes": 60,
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "bridge",
        "observer.ingress.interface.name": "ether1",
        "rule.name": "forward",
        "source.ip": "203.0.113.7",
        "source.mac": "4c:5e:0c:11:22:33",
        "source.port": 51544,
    },
    # 5: 2023-03-18T20:36:59.594792+01:00 10.120.127.1 firewall,info drop-tcp input: in:ether1-WA
    {
        "@timestamp": offset(1, 2023, 3, 18, 20, 36, 59, 594792),
        "destination.ip": "80.82.202.145",
        "destination.port": 37,
        "event.dataset": "mikrotik.firewall",
        "host.name": "10.120.127.1",
        "mikrotik.chain": "input",
        "mikrotik.connection_state": "new",
        "mikrotik.tcp.flags": ["SYN"],
        "mikrotik.topics": ["firewall", "info"],
        "network.bytes": 40,
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.ingress.interface.name": "ether1-WAN",
        "rule.name": "drop-tcp",
        "source.ip": "36.97.161.219",
        "source.mac": "00:17:10:88:bc:02",
        "source.port": 59388,
    },
    # 6: <30>May 30 19:41:39 MikroTik LOGDROP LogDrop: in:2.1-Net out:(none), proto ICMP (type 8,
    {
        "@timestamp": ist(2024, 5, 30, 19, 41, 39),
        "destination.ip": "216.1.1.1",
        "event.dataset": "mikrotik.firewall",
        "host.name": "MikroTik",
        "mikrotik.chain": "LogDrop",
        "mikrotik.icmp.code": 0,
        "mikrotik.icmp.type": 8,
        "network.bytes": 28,
        "network.transport": "icmp",
        "network.type": "ipv4",
        "observer.ingress.interface.name": "2.1-Net",
        "rule.name": "LOGDROP",
        "source.ip": "175.1.1.1",
    },
    # 7: firewall,info input: in:ether1 out:(unknown 0), src-mac 4c:5e:0c:11:22:33, proto TCP (SY
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "destination.ip": "2001:db8:1::1",
        "destination.port": 22,
        "event.dataset": "mikrotik.firewall",
        "mikrotik.chain": "input",
        "mikrotik.tcp.flags": ["SYN"],
        "mikrotik.topics": ["firewall", "info"],
        "network.bytes": 80,
        "network.transport": "tcp",
        "network.type": "ipv6",
        "observer.ingress.interface.name": "ether1",
        "rule.name": "input",
        "source.ip": "2001:db8::5",
        "source.mac": "4c:5e:0c:11:22:33",
        "source.port": 51544,
    },
    # 8: firewall,info input: in:ether1 out:(unknown 0), src-mac 4c:5e:0c:11:22:33, proto ICMP (t
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "destination.ip": "ff02::1",
        "event.dataset": "mikrotik.firewall",
        "mikrotik.chain": "input",
        "mikrotik.icmp.code": 0,
        "mikrotik.icmp.type": 128,
        "mikrotik.topics": ["firewall", "info"],
        "network.bytes": 64,
        "network.transport": "icmp",
        "network.type": "ipv6",
        "observer.ingress.interface.name": "ether1",
        "rule.name": "input",
        "source.ip": "fe80::4e5e:cff:fe11:2233",
        "source.mac": "4c:5e:0c:11:22:33",
    },
    # 9: forward: in:bridge out:pppoe-out1, connection-state:established proto TCP (ACK,FIN,PSH),
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "destination.ip": "142.250.185.78",
        "destination.port": 443,
        "event.dataset": "mikrotik.firewall",
        "mikrotik.chain": "forward",
        "mikrotik.connection_state": "established",
        "mikrotik.tcp.flags": ["ACK", "FIN", "PSH"],
        "network.bytes": 52,
        "network.transport": "tcp",
        "network.type": "ipv4",
        "observer.egress.interface.name": "pppoe-out1",
        "observer.ingress.interface.name": "bridge",
        "rule.name": "forward",
        "source.ip": "192.168.88.15",
        "source.port": 50122,
    },
    # 10: ->: 1mfih2id (172.16.3.126): logged in
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "event.action": "login",
        "event.dataset": "mikrotik.hotspot",
        "event.outcome": "success",
        "source.ip": "172.16.3.126",
        "user.name": "1mfih2id",
    },
    # 11: 1sm6k76j (172.16.0.15): logged out: keepalive timeout
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "event.action": "logout",
        "event.dataset": "mikrotik.hotspot",
        "event.outcome": "success",
        "event.reason": "keepalive timeout",
        "source.ip": "172.16.0.15",
        "user.name": "1sm6k76j",
    },
    # 12: 1sm6k76j (172.16.0.15): login failed: invalid username or password
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "event.action": "login-failed",
        "event.dataset": "mikrotik.hotspot",
        "event.outcome": "failure",
        "event.reason": "invalid username or password",
        "source.ip": "172.16.0.15",
        "user.name": "1sm6k76j",
    },
    # 13: <134>Jul 22 01:37:54 hotspot-gw hotspot,account,info,debug user1 (10.5.50.2): logged in
    {
        "@timestamp": ist(2024, 7, 22, 1, 37, 54),
        "event.action": "login",
        "event.dataset": "mikrotik.hotspot",
        "event.outcome": "success",
        "host.name": "hotspot-gw",
        "mikrotik.topics": ["hotspot", "account", "info", "debug"],
        "source.ip": "10.5.50.2",
        "user.name": "user1",
    },
    # 14: hotspot,info,debug user1 (10.5.50.2): trying to log in by http-chap
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "event.action": "login-attempt",
        "event.dataset": "mikrotik.hotspot",
        "event.outcome": "unknown",
        "mikrotik.hotspot.method": "http-chap",
        "mikrotik.topics": ["hotspot", "info", "debug"],
        "source.ip": "10.5.50.2",
        "user.name": "user1",
    },
    # 15: <134>Jul 22 02:10:11 hotspot-gw ->: user1 (10.5.50.2): logged out: session timeout
    {
        "@timestamp": ist(2024, 7, 22, 2, 10, 11),
        "event.action": "logout",
        "event.dataset": "mikrotik.hotspot",
        "event.outcome": "success",
        "event.reason": "session timeout",
        "host.name": "hotspot-gw",
        "source.ip": "10.5.50.2",
        "user.name": "user1",
    },
    # 16: Jul 22 01:38:02 user2 (10.5.50.3): logged in
    {
        "@timestamp": ist(2024, 7, 22, 1, 38, 2),
        "event.action": "login",
        "event.dataset": "mikrotik.hotspot",
        "event.outcome": "success",
        "host.name": "user2",
        "source.ip": "10.5.50.3",
        "user.name": "user2",
    },
    # 17: 11:42:32 dhcp,info defconf assigned 192.168.88.37 for B0:E4:5C:27:EF:F2 Samsung
    {
        "@timestamp": ist(2024, 7, 23, 11, 42, 32),
        "client.ip": "192.168.88.37",
        "client.mac": "b0:e4:5c:27:ef:f2",
        "event.action": "dhcp-assign",
        "event.dataset": "mikrotik.dhcp",
        "host.hostname": "Samsung",
        "mikrotik.dhcp.server": "defconf",
        "mikrotik.topics": ["dhcp", "info"],
    },
    # 18: Jun 22 21:40:16 192.168.65.1 dhcp,info dhcp_lan assigned 192.168.65.202 to E8:6F:38:88:9
    {
        "@timestamp": ist(2024, 6, 22, 21, 40, 16),
        "client.ip": "192.168.65.202",
        "client.mac": "e8:6f:38:88:92:29",
        "event.action": "dhcp-assign",
        "event.dataset": "mikrotik.dhcp",
        "host.name": "192.168.65.1",
        "mikrotik.dhcp.server": "dhcp_lan",
        "mikrotik.topics": ["dhcp", "info"],
    },
    # 19: dhcp,info defconf deassigned 192.168.88.37 for B0:E4:5C:27:EF:F2 Samsung
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "client.ip": "192.168.88.37",
        "client.mac": "b0:e4:5c:27:ef:f2",
        "event.action": "dhcp-release",
        "event.dataset": "mikrotik.dhcp",
        "host.hostname": "Samsung",
        "mikrotik.dhcp.server": "defconf",
        "mikrotik.topics": ["dhcp", "info"],
    },
    # 20: <134>Jun 22 21:45:00 gw1 dhcp,info dhcp_lan deassigned 192.168.65.202 from E8:6F:38:88:9
    {
        "@timestamp": ist(2024, 6, 22, 21, 45),
        "client.ip": "192.168.65.202",
        "client.mac": "e8:6f:38:88:92:29",
        "event.action": "dhcp-release",
        "event.dataset": "mikrotik.dhcp",
        "host.name": "gw1",
        "mikrotik.dhcp.server": "dhcp_lan",
        "mikrotik.topics": ["dhcp", "info"],
    },
    # 21: system,info,account user admin logged in from 10.1.101.212 via winbox
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "event.dataset": "mikrotik.log",
        "mikrotik.topics": ["system", "info", "account"],
    },
    # 22: dhcp,warning dhcp1 offering lease 192.168.88.254 for 00:0C:42:01:02:03 without success
    {
        "@timestamp": ist(2024, 7, 23, 12),
        "event.dataset": "mikrotik.log",
        "mikrotik.topics": ["dhcp", "warning"],
    },
]

# Lines of other formats that this parser must leave to their own parsers.
FOREIGN = [
    "Apr 29 2013 12:59:50: %ASA-6-302013: Built outbound TCP connection 89743277 for "
    "outside:192.168.0.17/80 (192.168.0.17/80) to inside:192.168.3.42/4954 (10.0.0.130/10879)",
    "<161>Oct 10 07:25:12 Hostname kernel: [wan-lan-default-D]IN=eth0 OUT= "
    "MAC=90:10:20:76:8d:20:90:10:65:29:b6:2a:08:00 SRC=67.43.156.15 DST=10.4.0.5 LEN=52 "
    "TOS=0x00 PREC=0x00 TTL=63 ID=0 DF PROTO=TCP SPT=38842 DPT=443 WINDOW=2853 RES=0x00 ACK URGP=0",
    "<190>Jul  4 09:39:41 dhcpd[64305]: DHCPACK on 10.150.60.56 to 4c:55:41:a0:fa:99 "
    "(computer-name) via eth0.60",
    "<190>Jul  4 09:39:41 dhcpd[64305]: DHCPRELEASE of 10.150.60.56 from 4c:55:41:a0:fa:99 "
    "(computer-name) via eth0.60 (found)",
    "CEF:0|Elastic|Vaporware|1.0.0-alpha|18|Web request|low|eventId=3457 requestMethod=POST "
    "src=89.160.20.156 spt=33876 dst=192.168.10.1 dpt=443",
    '<189>date=2020-04-23 time=12:17:48 devname="fw1" devid="FG100E4Q17000001" '
    'logid="0000000013" type="traffic" subtype="forward" srcip=10.0.0.1 srcintf="port1" '
    'dstintf="wan1" action="accept"',
    "<134>Jul  3 19:10:30 filterlog[72237]: 176,,,1520797901,igb1.27,match,pass,in,4,0xb8,,64,"
    "58355,0,none,17,udp,76,10.170.27.27,216.229.4.66,123,123,56",
    "<38>Jul  5 09:00:00 pfsense logportalauth[12345]: Zone: cpzone1 - ACCEPT: user1, "
    "00:11:22:33:44:55, 10.0.0.5",
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for "
    "lonvick on /dev/pts/8",
    'time="2024-07-22 10:00:00" user=bob action=login src=10.0.0.5 in=eth0 out=eth1',
    "sshd[811]: Accepted password for root from 10.0.0.9 port 50022 ssh2",
    "Login failed for user sa (10.0.0.5): password expired",
    "",
]


def test_samples_all_have_expectations() -> None:
    """Every line of samples/mikrotik.txt has exactly one expected event below."""
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
    """Lines of other vendors and formats are not claimed by the MikroTik parser."""
    assert MikroTikParser().parse(read_syslog(line, ISTANBUL, RECEIVED)) is None


def test_no_interface_placeholders() -> None:
    """``out:(unknown 0)`` and ``out:(none)`` leave the egress interface out."""
    for n in (5, 6):
        assert "observer.egress.interface.name" not in event_fields(LINES[n - 1])


MESSAGES = [read_syslog(line, ISTANBUL, RECEIVED) for line in LINES]


@PROPERTY
@given(
    st.one_of(
        mutated_syslog(MESSAGES),
        st.builds(
            Syslog,
            message=st.text(max_size=300),
            appname=st.one_of(
                st.none(), st.sampled_from(["srcnat", "->", "(10.0.0.1)"]), st.text(max_size=12)
            ),
            hostname=st.one_of(st.none(), st.text(max_size=12)),
            format=st.sampled_from(["bare", "rfc3164", "rfc5424"]),
        ),
    )
)
def test_property_never_raises(syslog: Syslog) -> None:
    """Arbitrary text and mutated samples never make the parser raise or emit empty values."""
    fields = MikroTikParser().parse(syslog)
    if fields is not None:
        assert fields["event.dataset"].startswith("mikrotik")
        assert all(v is not None and v != "" for v in fields.values())
