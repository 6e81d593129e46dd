"""Linux netfilter LOG lines: each sample line field by field, others not claimed, no raising."""

from __future__ import annotations

import datetime as dt

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sample_lines import ISTANBUL, RECEIVED, at, event_of, messages, mutations, samples

from logmaster.parsers import parse, read_syslog
from logmaster.parsers.base import Syslog
from logmaster.parsers.netfilter import NetfilterParser

NAME = "netfilter"


def test_every_sample_line_is_netfilter() -> None:
    """Every line of the samples file is understood, and by this parser."""
    for line in samples(NAME):
        event, understood = parse(line, zone=ISTANBUL, received=RECEIVED)
        assert understood, line
        assert event["event.dataset"] == "netfilter.log", line


def test_ipv4_tcp_with_bracketed_prefix_glued_to_in() -> None:
    """A "[prefix]" right before IN= is the rule name; MAC= splits into destination, source."""
    line = (
        "<161>Oct 10 07:25:12 Hostname kernel: [wan-lan-default-D]IN=eth0 OUT= "
        "MAC=90:10:20:76:8d:20:90:10:65:29:b6:2a:08:00 SRC=67.43.156.15 DST=10.4.0.5 LEN=52 "
        "TOS=0x00 PREC=0x00 TTL=63 ID=0 DF PROTO=TCP SPT=38842 DPT=443 WINDOW=2853 RES=0x00 ACK "
        "URGP=0"
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 10, 10, 7, 25, 12),
        "host.name": "Hostname",
        "log.syslog.severity.code": 1,
        "event.dataset": "netfilter.log",
        "rule.name": "wan-lan-default-D",
        "observer.ingress.interface.name": "eth0",
        "network.type": "ipv4",
        "network.transport": "tcp",
        "source.ip": "67.43.156.15",
        "source.port": 38842,
        "source.mac": "90:10:65:29:b6:2a",
        "destination.ip": "10.4.0.5",
        "destination.port": 443,
        "destination.mac": "90:10:20:76:8d:20",
        "netfilter.length": 52,
        "netfilter.ttl": 63,
        "netfilter.tcp.flags": ["ACK"],
    }


def test_prefix_with_words_and_colon() -> None:
    """The prefix "iptables DROP_INPUT: " is the rule name without its colon."""
    line = (
        "Jan  8 03:37:09 example-host kernel: iptables DROP_INPUT: IN=eth0 OUT= "
        "MAC=90:10:35:5a:1e:3a:90:10:9e:ec:2c:71:08:00 SRC=203.0.113.36 DST=172.16.54.114 LEN=52 "
        "TOS=0x00 PREC=0x00 TTL=115 ID=15743 DF PROTO=TCP SPT=17805 DPT=445 WINDOW=8192 "
        "RES=0x00 SYN URGP=0 "
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 1, 8, 3, 37, 9),
        "host.name": "example-host",
        "event.dataset": "netfilter.log",
        "rule.name": "iptables DROP_INPUT",
        "observer.ingress.interface.name": "eth0",
        "network.type": "ipv4",
        "network.transport": "tcp",
        "source.ip": "203.0.113.36",
        "source.port": 17805,
        "source.mac": "90:10:9e:ec:2c:71",
        "destination.ip": "172.16.54.114",
        "destination.port": 445,
        "destination.mac": "90:10:35:5a:1e:3a",
        "netfilter.length": 52,
        "netfilter.ttl": 115,
        "netfilter.tcp.flags": ["SYN"],
    }


def test_kernel_uptime_stamp_is_not_part_of_the_rule_name() -> None:
    """In "[ 1234.567890] [UFW BLOCK] " the uptime and the brackets are dropped."""
    line = (
        "<4>Mar 14 10:20:31 gw kernel: [ 1234.567890] [UFW BLOCK] IN=eth0 OUT= "
        "MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 SRC=198.51.100.23 DST=192.0.2.10 LEN=60 "
        "TOS=0x00 PREC=0x00 TTL=50 ID=54321 DF PROTO=TCP SPT=43512 DPT=22 WINDOW=64240 RES=0x00 "
        "SYN URGP=0 "
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 3, 14, 10, 20, 31),
        "host.name": "gw",
        "log.syslog.severity.code": 4,
        "event.dataset": "netfilter.log",
        "rule.name": "UFW BLOCK",
        "observer.ingress.interface.name": "eth0",
        "network.type": "ipv4",
        "network.transport": "tcp",
        "source.ip": "198.51.100.23",
        "source.port": 43512,
        "source.mac": "52:54:00:ab:cd:ef",
        "destination.ip": "192.0.2.10",
        "destination.port": 22,
        "destination.mac": "52:54:00:12:34:56",
        "netfilter.length": 60,
        "netfilter.ttl": 50,
        "netfilter.tcp.flags": ["SYN"],
    }


def test_forwarded_udp_keeps_the_ip_length_not_the_udp_one() -> None:
    """IN and OUT both set; UDP's own LEN= later in the line does not replace the IP length."""
    line = (
        "<4>Mar 14 10:20:32 gw kernel: [ 1235.001122] FWD-ACCEPT: IN=eth1 OUT=eth0 "
        "MAC=52:54:00:aa:bb:cc:52:54:00:11:22:33:08:00 SRC=10.0.0.15 DST=93.184.216.34 LEN=76 "
        "TOS=0x00 PREC=0x00 TTL=63 ID=1234 DF PROTO=UDP SPT=51820 DPT=123 LEN=56 "
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 3, 14, 10, 20, 32),
        "host.name": "gw",
        "log.syslog.severity.code": 4,
        "event.dataset": "netfilter.log",
        "rule.name": "FWD-ACCEPT",
        "observer.ingress.interface.name": "eth1",
        "observer.egress.interface.name": "eth0",
        "network.type": "ipv4",
        "network.transport": "udp",
        "source.ip": "10.0.0.15",
        "source.port": 51820,
        "source.mac": "52:54:00:11:22:33",
        "destination.ip": "93.184.216.34",
        "destination.port": 123,
        "destination.mac": "52:54:00:aa:bb:cc",
        "netfilter.length": 76,
        "netfilter.ttl": 63,
    }


def test_icmp_error_quotes_a_packet_that_does_not_override_the_outer_one() -> None:
    """ICMP type/code; the bracketed original packet's SRC/DST/ports are ignored."""
    line = (
        "Jan  8 03:37:09 DENY: IN=eth0 OUT= MAC=90:10:28:5f:62:24:90:10:18:5a:89:2a:08:00 "
        "SRC=192.0.2.71 DST=192.0.2.83 LEN=88 TOS=0x00 PREC=0x00 TTL=118 ID=21684 PROTO=ICMP "
        "TYPE=3 CODE=3 [SRC=192.0.2.83 DST=192.168.173.191 LEN=60 TOS=0x00 PREC=0x00 TTL=54 ID=0 "
        "DF PROTO=UDP SPT=21458 DPT=62936 LEN=40 ]"
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 1, 8, 3, 37, 9),
        "event.dataset": "netfilter.log",
        "observer.ingress.interface.name": "eth0",
        "network.type": "ipv4",
        "network.transport": "icmp",
        "source.ip": "192.0.2.71",
        "source.mac": "90:10:18:5a:89:2a",
        "destination.ip": "192.0.2.83",
        "destination.mac": "90:10:28:5f:62:24",
        "netfilter.icmp.type": 3,
        "netfilter.icmp.code": 3,
        "netfilter.length": 88,
        "netfilter.ttl": 118,
    }


def test_long_mac_field_and_mark() -> None:
    """A MAC= longer than 14 bytes still starts with destination and source; MARK kept."""
    line = (
        "Jun 28 04:30:32 Abc-A1 [SOMETHING-1234-A] IN=abc.123 OUT=abc.123 "
        "MAC=0a:ea:10:00:f0:06:10:e1:21:31:61:20:01:00:41:00:00:01 SRC=10.251.1.1 DST=10.251.1.1 "
        "LEN=84 TOS=00 PREC=0x00 TTL=63 ID=6789 PROTO=ICMP TYPE=8 CODE=0 ID=98765 SEQ=30123 MARK=0"
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 6, 28, 4, 30, 32),
        "host.name": "Abc-A1",
        "event.dataset": "netfilter.log",
        "rule.name": "SOMETHING-1234-A",
        "observer.ingress.interface.name": "abc.123",
        "observer.egress.interface.name": "abc.123",
        "network.type": "ipv4",
        "network.transport": "icmp",
        "source.ip": "10.251.1.1",
        "source.mac": "10:e1:21:31:61:20",
        "destination.ip": "10.251.1.1",
        "destination.mac": "0a:ea:10:00:f0:06",
        "netfilter.icmp.type": 8,
        "netfilter.icmp.code": 0,
        "netfilter.length": 84,
        "netfilter.ttl": 63,
        "netfilter.mark": "0",
    }


def test_ipv6_icmpv6_on_loopback() -> None:
    """IPv6: addresses normalised, ICMPv6 is ipv6-icmp, HOPLIMIT is the TTL; no MAC on lo."""
    line = (
        "Jan 22 09:05:05 ubuntu-bionic kernel: [16571.459614] IN= OUT=lo "
        "SRC=2001:0db8:0000:0000:0000:0000:0000:0001 DST=2001:0db8:0000:0000:0000:0000:0000:0002 "
        "LEN=104 TC=0 HOPLIMIT=64 FLOWLBL=868225 PROTO=ICMPv6 TYPE=128 CODE=0 ID=3427 SEQ=1 "
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 1, 22, 9, 5, 5),
        "host.name": "ubuntu-bionic",
        "event.dataset": "netfilter.log",
        "observer.egress.interface.name": "lo",
        "network.type": "ipv6",
        "network.transport": "ipv6-icmp",
        "source.ip": "2001:db8::1",
        "destination.ip": "2001:db8::2",
        "netfilter.icmp.type": 128,
        "netfilter.icmp.code": 0,
        "netfilter.length": 104,
        "netfilter.ttl": 64,
    }


def test_ipv6_tcp_with_ethernet_header() -> None:
    """IPv6 TCP with a MAC= whose ethertype is 86dd and a bare prefix word."""
    line = (
        "<4>Mar 14 10:21:00 gw kernel: [ 2001.000100] nft-in-drop IN=eth0 OUT= "
        "MAC=33:33:00:00:00:01:52:54:00:ab:cd:ef:86:dd SRC=fe80:0000:0000:0000:5054:00ff:feab:cdef "
        "DST=2001:0db8:0000:0000:0000:0000:0000:0080 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=327680 "
        "PROTO=TCP SPT=50514 DPT=443 WINDOW=64800 RES=0x00 SYN URGP=0 "
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 3, 14, 10, 21),
        "host.name": "gw",
        "log.syslog.severity.code": 4,
        "event.dataset": "netfilter.log",
        "rule.name": "nft-in-drop",
        "observer.ingress.interface.name": "eth0",
        "network.type": "ipv6",
        "network.transport": "tcp",
        "source.ip": "fe80::5054:ff:feab:cdef",
        "source.port": 50514,
        "source.mac": "52:54:00:ab:cd:ef",
        "destination.ip": "2001:db8::80",
        "destination.port": 443,
        "destination.mac": "33:33:00:00:00:01",
        "netfilter.length": 80,
        "netfilter.ttl": 64,
        "netfilter.tcp.flags": ["SYN"],
    }


def test_nftables_ether_flags_in_rfc5424() -> None:
    """nft "log flags ether" writes MACSRC=/MACDST=; an RFC 5424 header keeps its offset."""
    line = (
        "<4>1 2024-03-14T10:22:00.123456+03:00 gw kernel - - - [nft drop] IN=eth0 OUT= "
        "MACSRC=52:54:00:ab:cd:ef MACDST=52:54:00:12:34:56 MACPROTO=0800 SRC=203.0.113.9 "
        "DST=192.0.2.10 LEN=40 TOS=0x00 PREC=0x00 TTL=243 ID=17703 PROTO=TCP SPT=47091 DPT=1433 "
        "WINDOW=1024 RES=0x00 SYN URGP=0 MARK=0x1 "
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 3, 14, 10, 22, 0, 123456, tz=dt.timezone(dt.timedelta(hours=3))),
        "host.name": "gw",
        "log.syslog.severity.code": 4,
        "event.dataset": "netfilter.log",
        "rule.name": "nft drop",
        "observer.ingress.interface.name": "eth0",
        "network.type": "ipv4",
        "network.transport": "tcp",
        "source.ip": "203.0.113.9",
        "source.port": 47091,
        "source.mac": "52:54:00:ab:cd:ef",
        "destination.ip": "192.0.2.10",
        "destination.port": 1433,
        "destination.mac": "52:54:00:12:34:56",
        "netfilter.length": 40,
        "netfilter.ttl": 243,
        "netfilter.mark": "0x1",
        "netfilter.tcp.flags": ["SYN"],
    }


def test_bridge_without_prefix_and_numeric_protocol() -> None:
    """A bare kernel line (uptime only, no prefix): no rule.name; PROTO=47 is gre, no ports."""
    line = (
        "[  307.757925] IN=br0 OUT=br0 PHYSIN=eth2 PHYSOUT=eth3 "
        "MAC=aa:bb:cc:00:11:22:aa:bb:cc:33:44:55:08:00 SRC=192.168.50.20 DST=192.168.50.30 "
        "LEN=48 TOS=0x00 PREC=0x00 TTL=64 ID=0 DF PROTO=47 "
    )
    assert event_of(NAME, line) == {
        "@timestamp": RECEIVED,
        "event.dataset": "netfilter.log",
        "observer.ingress.interface.name": "br0",
        "observer.egress.interface.name": "br0",
        "network.type": "ipv4",
        "network.transport": "gre",
        "source.ip": "192.168.50.20",
        "source.mac": "aa:bb:cc:33:44:55",
        "destination.ip": "192.168.50.30",
        "destination.mac": "aa:bb:cc:00:11:22",
        "netfilter.length": 48,
        "netfilter.ttl": 64,
    }


def test_point_to_point_link_without_mac_and_with_uid() -> None:
    """No MAC= on ppp; --log-uid gives user.id."""
    line = (
        "IN=ppp0 OUT=eth1 SRC=198.51.100.77 DST=10.0.0.5 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=0 DF "
        "PROTO=UDP SPT=5060 DPT=5060 LEN=40 UID=0 GID=0 "
    )
    assert event_of(NAME, line) == {
        "@timestamp": RECEIVED,
        "event.dataset": "netfilter.log",
        "observer.ingress.interface.name": "ppp0",
        "observer.egress.interface.name": "eth1",
        "network.type": "ipv4",
        "network.transport": "udp",
        "source.ip": "198.51.100.77",
        "source.port": 5060,
        "destination.ip": "10.0.0.5",
        "destination.port": 5060,
        "netfilter.length": 60,
        "netfilter.ttl": 52,
        "user.id": "0",
    }


def test_prefix_without_trailing_space_is_glued_to_in() -> None:
    """--log-prefix "DROP" (no space) gives "DROPIN=eth0": the prefix is still cut off."""
    line = (
        "<4>Mar 14 10:23:00 gw kernel: [ 2100.500000] DROPIN=eth0 OUT= "
        "MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 SRC=198.51.100.40 DST=192.0.2.10 LEN=78 "
        "TOS=0x00 PREC=0x00 TTL=115 ID=4321 PROTO=UDP SPT=137 DPT=137 LEN=58 "
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 3, 14, 10, 23),
        "host.name": "gw",
        "log.syslog.severity.code": 4,
        "event.dataset": "netfilter.log",
        "rule.name": "DROP",
        "observer.ingress.interface.name": "eth0",
        "network.type": "ipv4",
        "network.transport": "udp",
        "source.ip": "198.51.100.40",
        "source.port": 137,
        "source.mac": "52:54:00:ab:cd:ef",
        "destination.ip": "192.0.2.10",
        "destination.port": 137,
        "destination.mac": "52:54:00:12:34:56",
        "netfilter.length": 78,
        "netfilter.ttl": 115,
    }


OTHER_FORMATS = [
    'date=2018-12-27 time=11:07:55 logid="0000000013" type="traffic" srcip=10.1.100.11 '
    'srcintf="port12" dstip=52.53.140.235',
    "firewall,info forward: in:ether5-LAN out:ether1-work-Irancell, src-mac 00:19:e7:90:d4:45, "
    "proto TCP (SYN), 10.0.10.76:61127->40.127.110.237:443, len 52",
    "<134>Jul  3 19:10:30 filterlog[72237]: 146,,,1535324496,igb1.12,match,block,in,4,0x0,,63,"
    "12617,0,DF,6,tcp,60,10.170.12.50,1.1.1.1,49724,853,0,S,1891286705,,64240,,mss",
    "Apr 29 2013 12:59:50: %ASA-6-302013: Built outbound TCP connection 89743277 for "
    "outside:192.168.0.17/80 (192.168.0.17/80) to inside:192.168.3.42/4954 (10.0.0.130/10879)",
    "<6>Mar 14 10:00:00 gw kernel: ARP IN=eth0 OUT= MAC=ff:ff:ff:ff:ff:ff ARP HTYPE=1 OPCODE=1",
    "<13>Mar 14 10:00:00 app: user LOGIN=ok SRC=none",
    "<13>Mar 14 10:00:00 app: config key=1 IN=eth0 OUT=eth1 SRC=10.0.0.1",
    "CEF:0|Linux|netfilter|1|drop|Dropped|3|msg=IN=eth0 OUT= SRC=10.0.0.1",
]


def test_other_formats_are_not_claimed() -> None:
    """Other vendors, ARP logs and lines merely containing IN=/SRC= words are not claimed."""
    parser = NetfilterParser()
    for line in OTHER_FORMATS:
        assert parser.parse(read_syslog(line, ISTANBUL, RECEIVED)) is None, line


PROPERTY = settings(max_examples=400, deadline=None)


@PROPERTY
# Long digit runs (int() refuses more than 4300 digits) must not raise either.
@example("IN= OUT= SRC=1.2.3.4 LEN=" + "9" * 5000 + " PROTO=TCP SPT=" + "9" * 5000, "kernel")
@given(st.one_of(st.text(), mutations(messages(NAME))), st.sampled_from([None, "kernel"]))
def test_property_never_raises(message: str, appname: str | None) -> None:
    """Arbitrary text and damaged sample messages return fields or None, never raise."""
    fields = NetfilterParser().parse(Syslog(message=message, appname=appname))
    assert fields is None or fields["source.ip"]
