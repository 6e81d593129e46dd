"""Cisco ASA / FTD / PIX: each sample line field by field, other formats not claimed, no raising."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sample_lines import ISTANBUL, RECEIVED, at, event_of, messages, mutations, samples

from logmaster.parsers import parse, read_syslog
from logmaster.parsers.base import Syslog
from logmaster.parsers.cisco_asa import CiscoAsaParser

NAME = "cisco_asa"
LEVEL = {4: "warning", 5: "notice", 6: "informational"}


def asa(code: str, severity: int, product: str = "ASA") -> dict[str, Any]:
    """The fields every ASA message has: its id and severity, from the %ASA tag."""
    return {
        "event.code": code,
        "event.severity": severity,
        "log.level": LEVEL[severity],
        "log.syslog.severity.code": severity,
        "observer.vendor": "Cisco",
        "observer.product": product,
    }


def test_every_sample_line_is_cisco_asa() -> None:
    """Every line of the samples file is understood, and by this parser."""
    for line in samples(NAME):
        event, understood = parse(line, zone=ISTANBUL, received=RECEIVED)
        assert understood, line
        assert event["event.dataset"].startswith("cisco_asa."), line


def test_305011_dynamic_pat_gives_real_and_mapped_source() -> None:
    """305011: the real address is the source, the mapped one source.nat; device time kept."""
    line = (
        "Apr 29 2013 12:59:50: %ASA-6-305011: Built dynamic TCP translation from "
        "inside:192.168.3.42/4954 to outside:192.168.0.130/10879"
    )
    assert event_of(NAME, line) == {
        **asa("305011", 6),
        "@timestamp": at(2013, 4, 29, 12, 59, 50),
        "event.dataset": "cisco_asa.nat",
        "event.action": "translation-built",
        "network.transport": "tcp",
        "source.ip": "192.168.3.42",
        "source.port": 4954,
        "source.nat.ip": "192.168.0.130",
        "source.nat.port": 10879,
        "observer.ingress.interface.name": "inside",
        "observer.egress.interface.name": "outside",
    }


def test_302013_outbound_takes_the_to_side_as_source() -> None:
    """302013 outbound: the inside ("to") host opened it; its mapped address is source.nat."""
    line = (
        "Apr 29 2013 12:59:50: %ASA-6-302013: Built outbound TCP connection 89743277 for "
        "outside:192.168.0.17/80 (192.168.0.17/80) to inside:192.168.3.42/4954 (10.0.0.130/10879)"
    )
    assert event_of(NAME, line) == {
        **asa("302013", 6),
        "@timestamp": at(2013, 4, 29, 12, 59, 50),
        "event.dataset": "cisco_asa.connection",
        "event.action": "connection-built",
        "network.direction": "outbound",
        "network.transport": "tcp",
        "cisco.asa.connection_id": 89743277,
        "source.ip": "192.168.3.42",
        "source.port": 4954,
        "source.nat.ip": "10.0.0.130",
        "source.nat.port": 10879,
        "destination.ip": "192.168.0.17",
        "destination.port": 80,
        "observer.ingress.interface.name": "inside",
        "observer.egress.interface.name": "outside",
    }


def test_302013_inbound_takes_the_for_side_as_source_and_gives_destination_nat() -> None:
    """302013 inbound (static NAT to a server): destination.nat is the public address."""
    line = (
        "<166>Mar 14 2024 10:15:02 asa-edge : %ASA-6-302013: Built inbound TCP connection 11 for "
        "outside:198.51.100.7/21647 (198.51.100.7/21647) to inside:10.1.1.2/22 (203.0.113.5/22)"
    )
    assert event_of(NAME, line) == {
        **asa("302013", 6),
        "@timestamp": at(2024, 3, 14, 10, 15, 2),
        "host.name": "asa-edge",
        "event.dataset": "cisco_asa.connection",
        "event.action": "connection-built",
        "network.direction": "inbound",
        "network.transport": "tcp",
        "cisco.asa.connection_id": 11,
        "source.ip": "198.51.100.7",
        "source.port": 21647,
        "destination.ip": "10.1.1.2",
        "destination.port": 22,
        "destination.nat.ip": "203.0.113.5",
        "destination.nat.port": 22,
        "observer.ingress.interface.name": "outside",
        "observer.egress.interface.name": "inside",
    }


def test_302013_identity_firewall_user_is_the_user() -> None:
    """302013 with an identity-firewall user after the mapped address: user.name."""
    line = (
        "Jan 13 2021 19:12:37: %ASA-6-302013: Built inbound TCP connection 27215708 for "
        "internet:10.2.3.4/49926 (1.2.3.4/49926)(LOCAL\\username) to vlan-42:1.2.3.4/80 "
        "(1.2.3.4/80) (username)"
    )
    assert event_of(NAME, line) == {
        **asa("302013", 6),
        "@timestamp": at(2021, 1, 13, 19, 12, 37),
        "event.dataset": "cisco_asa.connection",
        "event.action": "connection-built",
        "network.direction": "inbound",
        "network.transport": "tcp",
        "cisco.asa.connection_id": 27215708,
        "source.ip": "10.2.3.4",
        "source.port": 49926,
        "source.nat.ip": "1.2.3.4",
        "source.nat.port": 49926,
        "destination.ip": "1.2.3.4",
        "destination.port": 80,
        "user.name": "LOCAL\\username",
        "observer.ingress.interface.name": "internet",
        "observer.egress.interface.name": "vlan-42",
    }


def test_302013_interface_name_with_spaces_and_no_translation() -> None:
    """The interface "NP Identity Ifc" has spaces; equal real and mapped addresses: no NAT."""
    line = (
        "%ASA-6-302013: Built inbound TCP connection 10 for outside:10.1.2.1/28218 "
        "(10.1.2.1/28218) to NP Identity Ifc:10.1.2.2/22 (10.1.2.2/22)"
    )
    assert event_of(NAME, line) == {
        **asa("302013", 6),
        "@timestamp": RECEIVED,
        "event.dataset": "cisco_asa.connection",
        "event.action": "connection-built",
        "network.direction": "inbound",
        "network.transport": "tcp",
        "cisco.asa.connection_id": 10,
        "source.ip": "10.1.2.1",
        "source.port": 28218,
        "destination.ip": "10.1.2.2",
        "destination.port": 22,
        "observer.ingress.interface.name": "outside",
        "observer.egress.interface.name": "NP Identity Ifc",
    }


def test_302013_ipv6_addresses_after_the_interface_colon() -> None:
    """IPv6 addresses keep their colons; the interface ends at the first one."""
    line = (
        "<166>Mar 14 2024 10:15:03 asa-edge : %ASA-6-302013: Built inbound TCP connection 4312 "
        "for outside:2001:db8::10/51000 (2001:db8::10/51000) to dmz:2001:db8:1::80/443 "
        "(2001:db8:1::80/443)"
    )
    assert event_of(NAME, line) == {
        **asa("302013", 6),
        "@timestamp": at(2024, 3, 14, 10, 15, 3),
        "host.name": "asa-edge",
        "event.dataset": "cisco_asa.connection",
        "event.action": "connection-built",
        "network.direction": "inbound",
        "network.transport": "tcp",
        "cisco.asa.connection_id": 4312,
        "source.ip": "2001:db8::10",
        "source.port": 51000,
        "destination.ip": "2001:db8:1::80",
        "destination.port": 443,
        "observer.ingress.interface.name": "outside",
        "observer.egress.interface.name": "dmz",
    }


def test_302013_object_name_instead_of_address_is_a_domain() -> None:
    """A name from the ASA's "names" table is kept as source.domain, not as an IP."""
    line = (
        "Dec 11 2018 08:01:31 fw01 : %ASA-6-302013: Built outbound TCP connection 447236 for "
        "outside:192.0.2.222/1234 (192.0.2.222/1234) to dmz:OCSP_Server/5678 (OCSP_Server/5678)"
    )
    assert event_of(NAME, line) == {
        **asa("302013", 6),
        "@timestamp": at(2018, 12, 11, 8, 1, 31),
        "host.name": "fw01",
        "event.dataset": "cisco_asa.connection",
        "event.action": "connection-built",
        "network.direction": "outbound",
        "network.transport": "tcp",
        "cisco.asa.connection_id": 447236,
        "source.domain": "OCSP_Server",
        "source.port": 5678,
        "destination.ip": "192.0.2.222",
        "destination.port": 1234,
        "observer.ingress.interface.name": "dmz",
        "observer.egress.interface.name": "outside",
    }


def test_302015_pix_udp_after_a_relay_header() -> None:
    """%PIX-6-302015 behind a relay's header and the device's own: the tag is still found."""
    line = (
        "Jan 14 16:10:24 10.1.2.13 Jan 14 2010 12:29:43 SymCiscoApp : %PIX-6-302015: Built "
        "outbound UDP connection 414128851 for outside:168.15.3.6/53 (168.15.3.6/53) to "
        "inside:192.168.10.5/53 (192.168.10.5/171)"
    )
    assert event_of(NAME, line) == {
        **asa("302015", 6, product="PIX"),
        "@timestamp": at(2024, 1, 14, 16, 10, 24),
        "host.name": "10.1.2.13",
        "event.dataset": "cisco_asa.connection",
        "event.action": "connection-built",
        "network.direction": "outbound",
        "network.transport": "udp",
        "cisco.asa.connection_id": 414128851,
        "source.ip": "192.168.10.5",
        "source.port": 53,
        "source.nat.ip": "192.168.10.5",
        "source.nat.port": 171,
        "destination.ip": "168.15.3.6",
        "destination.port": 53,
        "observer.ingress.interface.name": "inside",
        "observer.egress.interface.name": "outside",
    }


def test_302014_teardown_duration_bytes_and_reason() -> None:
    """302014: duration in nanoseconds, bytes, reason; sides in the message's order."""
    line = (
        "<166>Mar 14 2024 10:15:40 asa-edge : %ASA-6-302014: Teardown TCP connection 9 for "
        "outside:10.1.2.1/22 to inside:10.1.1.2/53496 duration 0:00:30 bytes 0 SYN Timeout"
    )
    assert event_of(NAME, line) == {
        **asa("302014", 6),
        "@timestamp": at(2024, 3, 14, 10, 15, 40),
        "host.name": "asa-edge",
        "event.dataset": "cisco_asa.connection",
        "event.action": "connection-teardown",
        "event.duration": 30_000_000_000,
        "event.reason": "SYN Timeout",
        "network.bytes": 0,
        "network.transport": "tcp",
        "cisco.asa.connection_id": 9,
        "source.ip": "10.1.2.1",
        "source.port": 22,
        "destination.ip": "10.1.1.2",
        "destination.port": 53496,
        "observer.ingress.interface.name": "outside",
        "observer.egress.interface.name": "inside",
    }


def test_302016_teardown_udp_hours() -> None:
    """302016: an h:mm:ss duration over an hour."""
    line = (
        "Apr 29 2013 12:59:50: %ASA-6-302016: Teardown UDP connection 89743275 for "
        "outside:192.0.2.222/53 to inside:10.123.1.35/52925 duration 1:23:45 bytes 140"
    )
    assert event_of(NAME, line) == {
        **asa("302016", 6),
        "@timestamp": at(2013, 4, 29, 12, 59, 50),
        "event.dataset": "cisco_asa.connection",
        "event.action": "connection-teardown",
        "event.duration": (3600 + 23 * 60 + 45) * 1_000_000_000,
        "network.bytes": 140,
        "network.transport": "udp",
        "cisco.asa.connection_id": 89743275,
        "source.ip": "192.0.2.222",
        "source.port": 53,
        "destination.ip": "10.123.1.35",
        "destination.port": 52925,
        "observer.ingress.interface.name": "outside",
        "observer.egress.interface.name": "inside",
    }


def test_305012_teardown_without_header_takes_severity_from_the_tag() -> None:
    """305012 bare: translation-teardown with its duration; severity from %ASA-6."""
    line = (
        "%ASA-6-305012: Teardown dynamic UDP translation from inside:192.168.1.10/52925 to "
        "outside:203.0.113.1/25882 duration 0:00:31"
    )
    assert event_of(NAME, line) == {
        **asa("305012", 6),
        "@timestamp": RECEIVED,
        "event.dataset": "cisco_asa.nat",
        "event.action": "translation-teardown",
        "event.duration": 31_000_000_000,
        "network.transport": "udp",
        "source.ip": "192.168.1.10",
        "source.port": 52925,
        "source.nat.ip": "203.0.113.1",
        "source.nat.port": 25882,
        "observer.ingress.interface.name": "inside",
        "observer.egress.interface.name": "outside",
    }


def test_305011_icmp_translation_has_no_ports() -> None:
    """ICMP "ports" are query ids: the translation is kept without ports."""
    line = (
        "Apr 29 2013 13:00:01: %ASA-6-305011: Built dynamic ICMP translation from "
        "inside:192.168.3.42/1 to outside:192.168.0.130/21505"
    )
    assert event_of(NAME, line) == {
        **asa("305011", 6),
        "@timestamp": at(2013, 4, 29, 13, 0, 1),
        "event.dataset": "cisco_asa.nat",
        "event.action": "translation-built",
        "network.transport": "icmp",
        "source.ip": "192.168.3.42",
        "source.nat.ip": "192.168.0.130",
        "observer.ingress.interface.name": "inside",
        "observer.egress.interface.name": "outside",
    }


def test_305011_ftd_prefix() -> None:
    """Firepower Threat Defense writes %FTD- with the ASA message grammar."""
    line = (
        "<166>Mar 14 2024 10:16:00 ftd01 : %FTD-6-305011: Built dynamic TCP translation from "
        "inside:10.10.10.5/51234 to outside:203.0.113.10/51234"
    )
    assert event_of(NAME, line) == {
        **asa("305011", 6, product="FTD"),
        "@timestamp": at(2024, 3, 14, 10, 16),
        "host.name": "ftd01",
        "event.dataset": "cisco_asa.nat",
        "event.action": "translation-built",
        "network.transport": "tcp",
        "source.ip": "10.10.10.5",
        "source.port": 51234,
        "source.nat.ip": "203.0.113.10",
        "source.nat.port": 51234,
        "observer.ingress.interface.name": "inside",
        "observer.egress.interface.name": "outside",
    }


def test_305009_static_nat_without_ports() -> None:
    """305009: a one-to-one translation, addresses only."""
    line = (
        "<166>Mar 14 2024 10:16:05 asa-edge : %ASA-6-305009: Built static translation from "
        "dmz:10.1.2.5 to outside:203.0.113.25"
    )
    assert event_of(NAME, line) == {
        **asa("305009", 6),
        "@timestamp": at(2024, 3, 14, 10, 16, 5),
        "host.name": "asa-edge",
        "event.dataset": "cisco_asa.nat",
        "event.action": "translation-built",
        "source.ip": "10.1.2.5",
        "source.nat.ip": "203.0.113.25",
        "observer.ingress.interface.name": "dmz",
        "observer.egress.interface.name": "outside",
    }


def test_106023_deny_by_access_group() -> None:
    """106023: deny with the access group as rule.name."""
    line = (
        "Apr 30 2013 09:23:40: %ASA-4-106023: Deny tcp src outside:192.0.2.126/53638 dst "
        'inside:10.0.0.132/8111 by access-group "acl_out" [0x71761f18, 0x0]'
    )
    assert event_of(NAME, line) == {
        **asa("106023", 4),
        "@timestamp": at(2013, 4, 30, 9, 23, 40),
        "event.dataset": "cisco_asa.firewall",
        "event.action": "deny",
        "rule.name": "acl_out",
        "network.transport": "tcp",
        "source.ip": "192.0.2.126",
        "source.port": 53638,
        "destination.ip": "10.0.0.132",
        "destination.port": 8111,
        "observer.ingress.interface.name": "outside",
        "observer.egress.interface.name": "inside",
    }


def test_106023_icmp_with_type_and_code() -> None:
    """106023 for ICMP: no ports, the "(type 8, code 0)" part skipped."""
    line = (
        "<164>Dec 11 2018 08:01:24 fw01 : %ASA-4-106023: Deny icmp src outside:198.51.100.9 dst "
        'inside:10.0.0.1 (type 8, code 0) by access-group "outside_in" [0x0, 0x0]'
    )
    assert event_of(NAME, line) == {
        **asa("106023", 4),
        "@timestamp": at(2018, 12, 11, 8, 1, 24),
        "host.name": "fw01",
        "event.dataset": "cisco_asa.firewall",
        "event.action": "deny",
        "rule.name": "outside_in",
        "network.transport": "icmp",
        "source.ip": "198.51.100.9",
        "destination.ip": "10.0.0.1",
        "observer.ingress.interface.name": "outside",
        "observer.egress.interface.name": "inside",
    }


def test_106023_protocol_number() -> None:
    """In "Deny protocol 47" the IANA number becomes its name."""
    line = (
        "%ASA-4-106023: Deny protocol 47 src outside:100.100.100.100 dst inside:192.168.1.1 by "
        'access-group "outside_in" [0x0, 0x0]'
    )
    assert event_of(NAME, line) == {
        **asa("106023", 4),
        "@timestamp": RECEIVED,
        "event.dataset": "cisco_asa.firewall",
        "event.action": "deny",
        "rule.name": "outside_in",
        "network.transport": "gre",
        "source.ip": "100.100.100.100",
        "destination.ip": "192.168.1.1",
        "observer.ingress.interface.name": "outside",
        "observer.egress.interface.name": "inside",
    }


def test_106100_denied_by_access_list() -> None:
    """106100 denied: rule.name is the ACL, ports from the parentheses."""
    line = (
        "Apr 24 2013 16:00:28 INT-FW01 : %ASA-6-106100: access-list inside denied udp "
        "inside/172.29.2.101(1039) -> outside/192.0.2.10(53) hit-cnt 1 first hit "
        "[0xd820e56a, 0x0]"
    )
    assert event_of(NAME, line) == {
        **asa("106100", 6),
        "@timestamp": at(2013, 4, 24, 16, 0, 28),
        "host.name": "INT-FW01",
        "event.dataset": "cisco_asa.firewall",
        "event.action": "deny",
        "rule.name": "inside",
        "cisco.asa.hit_count": 1,
        "network.transport": "udp",
        "source.ip": "172.29.2.101",
        "source.port": 1039,
        "destination.ip": "192.0.2.10",
        "destination.port": 53,
        "observer.ingress.interface.name": "inside",
        "observer.egress.interface.name": "outside",
    }


def test_106100_permitted_with_class_infix() -> None:
    """%ASA-session-5-106100: the class infix is skipped; permitted becomes permit."""
    line = (
        "Apr 15 2014 09:34:34 EDT: %ASA-session-5-106100: access-list acl_in permitted tcp "
        "inside/10.1.2.16(2241) -> outside/192.0.0.89(2000) hit-cnt 144 300-second interval "
        "[0x71a87d94, 0x0]"
    )
    assert event_of(NAME, line) == {
        **asa("106100", 5),
        "@timestamp": at(2014, 4, 15, 9, 34, 34),
        "event.dataset": "cisco_asa.firewall",
        "event.action": "permit",
        "rule.name": "acl_in",
        "cisco.asa.hit_count": 144,
        "network.transport": "tcp",
        "source.ip": "10.1.2.16",
        "source.port": 2241,
        "destination.ip": "192.0.0.89",
        "destination.port": 2000,
        "observer.ingress.interface.name": "inside",
        "observer.egress.interface.name": "outside",
    }


def test_106100_est_allowed() -> None:
    """106100 est-allowed (a packet of an established connection) keeps its verdict."""
    line = (
        "Apr 30 2013 09:23:43: %ASA-5-106100: access-list acl_in est-allowed tcp "
        "inside/10.0.0.46(49840) -> outside/192.0.0.88(40443) hit-cnt 1 first hit "
        "[0x71a87d94, 0x0]"
    )
    assert event_of(NAME, line) == {
        **asa("106100", 5),
        "@timestamp": at(2013, 4, 30, 9, 23, 43),
        "event.dataset": "cisco_asa.firewall",
        "event.action": "est-allowed",
        "rule.name": "acl_in",
        "cisco.asa.hit_count": 1,
        "network.transport": "tcp",
        "source.ip": "10.0.0.46",
        "source.port": 49840,
        "destination.ip": "192.0.0.88",
        "destination.port": 40443,
        "observer.ingress.interface.name": "inside",
        "observer.egress.interface.name": "outside",
    }


def test_other_message_ids_get_the_generic_fields() -> None:
    """A message id without its own grammar here still gets code, severity and dataset."""
    line = (
        "<164>Mar 14 2024 10:17:00 asa-edge : %ASA-4-106015: Deny TCP (no connection) from "
        "192.0.2.222/1234 to 192.168.1.34/5679 flags RST  on interface outside"
    )
    assert event_of(NAME, line) == {
        **asa("106015", 4),
        "@timestamp": at(2024, 3, 14, 10, 17),
        "host.name": "asa-edge",
        "event.dataset": "cisco_asa.log",
    }


def test_header_priority_wins_over_the_tag_severity() -> None:
    """With a PRI the syslog severity stays the header's; the tag's is event.severity."""
    event, _ = parse(
        "<165>Mar 14 2024 10:17:00 asa-edge : %ASA-6-106015: Deny TCP (no connection)",
        zone=ISTANBUL,
        received=RECEIVED,
    )
    assert (event["log.syslog.severity.code"], event["event.severity"]) == (5, 6)


def test_a_damaged_known_message_keeps_the_generic_fields() -> None:
    """A 302013 cut short is still an ASA event, without invented addresses."""
    fields = CiscoAsaParser().parse(Syslog(message="%ASA-6-302013: Built inbound TCP conn"))
    assert fields == {**asa("302013", 6), "event.dataset": "cisco_asa.log"}


OTHER_FORMATS = [
    "<189>1234: *Mar  1 18:46:11.123: %SEC-6-IPACCESSLOGP: list 101 denied tcp "
    "10.1.1.2(1234) -> 172.16.1.1(80), 1 packet",
    "<187>Mar 14 10:00:00 sw1 %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up",
    'date=2018-12-27 time=11:07:55 logid="0000000013" type="traffic" srcip=10.1.100.11',
    "firewall,info forward: in:ether5-LAN out:ether1, src-mac 00:19:e7:90:d4:45, proto TCP "
    "(SYN), 10.0.10.76:61127->40.127.110.237:443, len 52",
    "<134>Jul  3 19:10:30 filterlog[72237]: 146,,,1535324496,igb1.12,match,block,in,4,0x0,,63",
    "<190>Jul  4 09:39:41 dhcpd[64305]: DHCPACK on 10.150.60.56 to 4c:55:41:a0:fa:99 via eth0",
    "CEF:0|Cisco|ASA|9.8|302013|Built connection|3|src=10.0.0.1 msg=%ASA-6-302013",
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    "The link reported 100% %ASAP-style progress",
]


def test_other_formats_are_not_claimed() -> None:
    """Cisco IOS, other vendors and prose with a percent sign are left to other parsers."""
    parser = CiscoAsaParser()
    for line in OTHER_FORMATS:
        assert parser.parse(read_syslog(line, ISTANBUL, RECEIVED)) is None, line


PROPERTY = settings(max_examples=400, deadline=None)


@PROPERTY
# Long digit runs (int() refuses more than 4300 digits) must not raise either.
@example(
    "%ASA-6-302014: Teardown TCP connection " + "9" * 1500 + " for a:1.2.3.4/1 to "
    "b:1.2.3.4/2 duration 99999999:00:00 bytes 1",
    None,
)
@given(st.one_of(st.text(), mutations(messages(NAME))), st.sampled_from([None, "asa", "%ASA"]))
def test_property_never_raises(message: str, appname: str | None) -> None:
    """Arbitrary text and damaged sample messages return fields or None, never raise."""
    fields = CiscoAsaParser().parse(Syslog(message=message, appname=appname))
    assert fields is None or fields["event.dataset"].startswith("cisco_asa.")
